"""python -m streamssm.serve as a client sees it: streams decoded together give the events of each
decoded alone; every kind of bad input closes that connection only, with a reason; clients that
vanish (one mid-stream, 100 at once) leave the server serving the others."""

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from serve_helpers import alexa, as_int16, decode_alone, kws_recognizer, running, sentence  # noqa: F401 (fixtures)
from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split
from streamssm.recognizer import StreamingRecognizer
from streamssm.serve import event_message
from virtual_mic import REPO

TIMEOUT_S = 120  # for anything a client waits for; generous: the machine may be busy
MAX_MESSAGE = 65536


@pytest.fixture(scope="module")
def server(shared_data):
    """A kws server: ws:// and http:// addresses."""
    with running(
        "streamssm.serve",
        "--model",
        "kws",
        "--port",
        "0",
        "--max-connections",
        "150",
        "--max-message-bytes",
        str(MAX_MESSAGE),
    ) as line:
        yield addresses(line)


def addresses(line: str) -> dict:
    http = line.split(" on ")[1].split()[0]
    return {"http": http, "ws": http.replace("http://", "ws://")}


def expected(recognizer, chunk, rate, downmix=False) -> list[dict]:
    """The messages of the events of `chunk` decoded alone, and the closing {"type": "eof"}."""
    return [json.loads(event_message(e)) for e in decode_alone(recognizer, chunk, rate, downmix)] + [{"type": "eof"}]


def same_events(got: list[dict], want: list[dict]) -> bool:
    strip = [{k: v for k, v in m.items() if k != "score"} for m in got]
    if strip != [{k: v for k, v in m.items() if k != "score"} for m in want]:
        return False
    return np.allclose([m.get("score", 0) for m in got], [m.get("score", 0) for m in want], atol=1e-4)


async def client(url: str, messages, settings: dict | None = None, eof: bool = True, seed: int = 0):
    """Send `settings`, then each message of `messages` (bytes or str), then {"eof": true}; returns
    (messages received as dicts, close code, close reason)."""
    received = []
    async with connect(url, max_size=None, open_timeout=TIMEOUT_S, close_timeout=TIMEOUT_S) as ws:

        async def read():
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    received.append(json.loads(message))

        reader = asyncio.create_task(read())
        try:
            if settings is not None:
                await ws.send(json.dumps(settings))
            for message in messages:
                await ws.send(message)
            if eof:
                await ws.send(json.dumps({"eof": True}))
        except ConnectionClosed:  # closed by the server while sending: its reason is what the test checks
            pass
        await asyncio.wait_for(reader, TIMEOUT_S)
    return received, ws.close_code, ws.close_reason


def pieces(data: bytes, frame: int, seed: int) -> list[bytes]:
    """`data` cut at random whole frames into messages of 1 to 4000 frames."""
    rng, out, position = random.Random(seed), [], 0
    while position < len(data):
        size = rng.randint(1, 4000) * frame
        out.append(data[position : position + size])
        position += size
    return out


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 4 * TIMEOUT_S))


def test_page_and_info(server):
    page = urllib.request.urlopen(server["http"], timeout=TIMEOUT_S)
    assert page.headers["Content-Type"].startswith("text/html") and b"getUserMedia" in page.read()
    info = json.load(urllib.request.urlopen(server["http"] + "info", timeout=TIMEOUT_S))
    assert info["model"] == "kws" and info["kind"] == "kws" and "alexa" in info["keywords"]
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(server["http"] + "nothing", timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def clips(shared_data, alexa):
    """Real recordings as the clients send them: (settings, messages, the same audio for decode_alone)."""
    digit = next(u for u in real_kws_split("fsdd")["eval"] if u.keyword == "seven")
    digit_8k = as_int16(read_audio(digit.audio, 8000))
    alexa_48k = read_audio(shared_data / "kws" / "wwb" / "alexa" / "1.flac", 48000)
    alexa_16k = as_int16(alexa)
    return {
        "alexa s16le": ({}, pieces(alexa_16k.tobytes(), 2, 1), (alexa_16k, 16000)),
        "alexa f32le 48 kHz": (
            {"sample_rate": 48000, "format": "f32le"},
            pieces(alexa_48k.tobytes(), 4, 2),
            (alexa_48k, 48000),
        ),
        "digit 8 kHz": ({"sample_rate": 8000}, pieces(digit_8k.tobytes(), 2, 3), (digit_8k, 8000)),
    }


def test_streams_decoded_together_equal_each_decoded_alone(server, clips, kws_recognizer):
    options = {"keywords": ["alexa", "jarvis"], "thresholds": {"alexa": 0.3}}
    alexa_settings, alexa_messages, alexa_audio = clips["alexa s16le"]
    sessions = [*clips.values(), (options, alexa_messages, alexa_audio)]

    async def all_at_once():
        return await asyncio.gather(*(client(server["ws"], messages, settings) for settings, messages, _ in sessions))

    results = run(all_at_once())
    wanted = [expected(kws_recognizer, *audio) for _, _, audio in clips.values()]
    wanted.append(expected(StreamingRecognizer.from_pretrained("kws", **options), *alexa_audio))
    for (received, code, reason), want in zip(results, wanted):
        assert (code, reason) == (1000, "end of stream")
        assert same_events(received, want), (received, want)
    assert [m["text"] for m in results[0][0][:-1]] == ["alexa"]  # the real recording was heard
    info = json.load(urllib.request.urlopen(server["http"] + "info", timeout=TIMEOUT_S))
    assert info["largest_batch"] >= 2, info  # streams were decoded together


BAD_INPUT = {  # name: (settings message or None, messages, close code, words of the reason)
    "malformed JSON": (None, ['{"sample_rate": 16000'], 1007, "malformed JSON"),
    "not an object": (None, ["[16000]"], 1007, "expected a JSON object"),
    "unknown field": ({"rate": 16000}, [], 1008, "unknown field(s) ['rate']"),
    "unknown format": ({"format": "mp3"}, [], 1008, "unknown format 'mp3'"),
    "bad sample rate": ({"sample_rate": -5}, [], 1008, "sample rate must be a positive integer"),
    "keyword without letters": ({"keywords": ["alexa", "#1"]}, [b"\0\0" * 160], 1008, "keyword '#1' has no letters"),
    "bad threshold": ({"thresholds": "high"}, [], 1008, "thresholds must be a number"),
    "odd bytes for s16le": (None, [b"\0\0" * 10, b"\0" * 7], 1007, "7 bytes is not a whole number of 2-byte"),
    "NaN in f32le": ({"format": "f32le"}, [np.array([0.1, np.nan], np.float32).tobytes()], 1007, "NaN"),
    "sample rate change": (
        {"sample_rate": 16000},
        [b"\0\0" * 160, '{"sample_rate": 8000}'],
        1008,
        "sample rate changed from 16000 to 8000",
    ),
    "settings twice": ({"sample_rate": 16000}, ['{"format": "s16le"}'], 1008, "settings come once"),
    "eof with more": (None, ['{"eof": true, "flush": 1}'], 1008, '{"eof": true} alone'),
    "oversized message": (None, [b"\0\0" * MAX_MESSAGE], 1009, ""),
}


@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_closes_the_connection_with_a_reason(server, name):
    settings, messages, code, words = BAD_INPUT[name]
    received, close_code, reason = run(client(server["ws"], messages, settings, eof=False))
    assert close_code == code and words[:60] in reason, (close_code, reason)
    if code != 1009:  # the library itself closes an oversized message
        assert received[-1]["type"] == "error" and words in received[-1]["message"]


def test_text_keywords_beside_trained_ones(server):
    """A word the kws model was never trained on, spelled by the asr model, in the same stream."""
    demos = REPO / "demos" / "audio"
    audio = as_int16(np.concatenate([read_audio(demos / "alexa.flac"), read_audio(demos / "printing.flac")]))
    options = {"keywords": ["alexa", "printing"]}
    received, code, _ = run(client(server["ws"], pieces(audio.tobytes(), 2, 4), options))
    assert code == 1000 and [m["text"] for m in received[:-1]] == ["alexa", "printing"]
    assert same_events(received, expected(StreamingRecognizer.from_pretrained("kws", **options), audio, 16000))


def test_bad_clients_and_vanishing_clients_harm_no_other(server, clips, kws_recognizer):
    """While a good client streams: every bad input, a client that vanishes mid-stream and 100
    connections opened and dropped at once; the good client's events are those of decoding alone."""
    settings, messages, audio = clips["alexa s16le"]

    async def vanish(n_messages):
        ws = await connect(server["ws"], open_timeout=TIMEOUT_S)
        await ws.send(json.dumps({"sample_rate": 16000}))
        for message in messages[:n_messages]:
            await ws.send(message)
        return ws

    async def everything():
        good = asyncio.create_task(client(server["ws"], messages, settings))
        bad = [client(server["ws"], m, s, eof=False) for s, m, _, _ in BAD_INPUT.values()]
        dropped = await asyncio.gather(vanish(len(messages) // 2), *(vanish(i % 3) for i in range(100)))
        for ws in dropped:
            ws.transport.abort()  # gone without a closing handshake
        await asyncio.gather(*bad)
        return await good

    received, code, _ = run(everything())
    assert code == 1000 and same_events(received, expected(kws_recognizer, *audio))
    again, code, _ = run(client(server["ws"], messages, settings))
    assert code == 1000 and same_events(again, expected(kws_recognizer, *audio))


def test_dropped_connections_are_released(server):
    """After clients vanish, the server holds no connection or session for them."""

    async def open_and_drop():
        sockets = await asyncio.gather(*(connect(server["ws"], open_timeout=TIMEOUT_S) for _ in range(20)))
        for ws in sockets:
            await ws.send(b"\0\0" * 1600)
            ws.transport.abort()
        for _ in range(TIMEOUT_S * 10):
            info = json.load(urllib.request.urlopen(server["http"] + "info", timeout=TIMEOUT_S))
            if info["connections"] == info["sessions"] == 0:
                return info
            await asyncio.sleep(0.1)
        return info

    info = run(open_and_drop())
    assert info["connections"] == info["sessions"] == 0, info


def test_end_of_stream_without_audio(server):
    received, code, reason = run(client(server["ws"], [], {"sample_rate": 16000}))
    assert received == [{"type": "eof"}] and (code, reason) == (1000, "end of stream")


def test_limits_on_connections_and_pace(shared_data):
    with running("streamssm.serve", "--port", "0", "--max-connections", "2", "--max-ahead-s", "3") as line:
        url = addresses(line)["ws"]

        async def third_of_two():
            async with connect(url) as first, connect(url) as second:
                await first.send(b"\0\0" * 160)
                await second.send(b"\0\0" * 160)
                return await client(url, [], eof=False)

        received, code, reason = run(third_of_two())
        assert code == 1013 and "server full" in reason
        too_fast = [b"\0\0" * 16000] * 60  # a minute of audio at once, 3 s ahead at most are allowed
        received, code, reason = run(client(url, too_fast, eof=False))
        assert code == 1008 and "ahead of real time" in reason


def test_idle_connection_is_closed(shared_data):
    with running("streamssm.serve", "--port", "0", "--idle-timeout", "0.5") as line:
        received, code, reason = run(client(addresses(line)["ws"], [b"\0\0" * 160], eof=False))
    assert code == 1008 and "idle: no message for 0.5 s" in reason


def test_speech_model_streams_equal_decoding_alone(sentence):
    audio = as_int16(sentence)
    with running("streamssm.serve", "--model", "asr", "--port", "0") as line:
        url = addresses(line)["ws"]

        async def two_clients():
            return await asyncio.gather(*(client(url, pieces(audio.tobytes(), 2, seed)) for seed in (1, 2)))

        results = run(two_clients())
    want = expected(StreamingRecognizer.from_pretrained("asr"), audio, 16000)
    assert any(m["type"] == "final" and m["words"] for m in want), "the model should transcribe a real sentence"
    for received, code, _ in results:
        assert code == 1000 and same_events(received, want)


def test_help_explains_the_protocol():
    done = subprocess.run(
        [sys.executable, "-m", "streamssm.serve", "--help"], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0 and '{"eof": true}' in done.stdout and "--max-batch-size" in done.stdout
