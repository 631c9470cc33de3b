"""python -m streamssm.wyoming driven by the wyoming package's own client and event classes, with
real recordings in the formats a Home Assistant satellite may send."""

import asyncio
import contextlib
import subprocess
import sys

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.wake import Detect, Detection, NotDetected

from serve_helpers import alexa, as_int16, decode_alone, free_port, kws_recognizer, running, sentence  # noqa: F401
from streamssm.audio import StreamingResampler, read_audio
from streamssm.recognizer import StreamingRecognizer
from virtual_mic import REPO

TIMEOUT_S = 120
STOPS = (NotDetected, TranscriptStop, Error)  # what ends the answer to one audio stream


@pytest.fixture(scope="module")
def wake_port(shared_data):
    port = free_port()
    with running("streamssm.wyoming", "--model", "kws", "--uri", f"tcp://127.0.0.1:{port}"):
        yield port


def resampled(audio: np.ndarray, rate: int) -> np.ndarray:
    resampler = StreamingResampler(16000, rate)
    return np.concatenate([resampler.process(audio), resampler.flush()])


def pcm(audio: np.ndarray, width: int, channels: int) -> bytes:
    """Float samples as interleaved little-endian PCM: 8-bit unsigned, 16/24/32-bit signed."""
    frames = np.repeat(audio[:, None], channels, axis=1).ravel()
    if width == 1:
        return (np.round(np.clip(frames, -1, 1) * 127) + 128).astype(np.uint8).tobytes()
    full_scale = 2 ** (8 * width - 1) - 1
    samples = np.round(np.clip(frames, -1, 1) * full_scale).astype("<i4")
    if width == 3:  # the low three bytes of each sample
        return samples.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return samples.astype("<i2" if width == 2 else "<i4").tobytes()


@contextlib.asynccontextmanager
async def wyoming_client(port: int):
    """The wyoming package's TCP client; a server that closed the connection on bad input does not
    fail the exit."""
    client = AsyncTcpClient("127.0.0.1", port, read_timeout=TIMEOUT_S)
    await client.connect()
    try:
        yield client
    finally:
        with contextlib.suppress(ConnectionError):
            await client.disconnect()


async def exchange(port: int, streams: list) -> list:
    """Send each (events, rate, width, channels, audio bytes) of `streams` on one connection: the
    events, then the audio between audio-start and audio-stop in 100 ms chunks. Returns every event
    received until the last stream's answer ends (not-detected, transcript-stop or an error)."""
    received = []
    async with wyoming_client(port) as wyoming:
        with contextlib.suppress(ConnectionError):  # a server refusing bad input closes the connection
            for first, rate, width, channels, audio in streams:
                for event in first:
                    await wyoming.write_event(event.event())
                await wyoming.write_event(AudioStart(rate, width, channels).event())
                step = rate // 10 * width * channels
                for start in range(0, len(audio), step):
                    await wyoming.write_event(AudioChunk(rate, width, channels, audio[start : start + step]).event())
                await wyoming.write_event(AudioStop().event())
        while not received or not any(kind.is_type(received[-1].type) for kind in STOPS):
            event = await wyoming.read_event()
            if event is None:
                break
            received.append(event)
    return received


SILENCE = ([Detect()], 16000, 2, 1, bytes(32000))  # one second: ends a wake-word exchange with not-detected


def test_describe_lists_the_keywords_as_wake_words(wake_port, kws_recognizer):
    async def describe():
        async with wyoming_client(wake_port) as wyoming:
            await wyoming.write_event(Describe().event())
            return Info.from_event(await wyoming.read_event())

    info = asyncio.run(describe())
    assert [m.name for m in info.wake[0].models] == kws_recognizer.keywords and not info.asr


@pytest.mark.parametrize("rate, width, channels", [(16000, 2, 1), (48000, 2, 2), (22050, 3, 1), (11025, 1, 1)])
def test_wake_word_in_any_audio_format(wake_port, alexa, rate, width, channels):
    """A held-out real "alexa" in this format is detected once, by name; silence after it on the
    same connection is not."""
    audio = pcm(resampled(alexa, rate), width, channels)
    received = asyncio.run(exchange(wake_port, [([Detect()], rate, width, channels, audio), SILENCE]))
    assert [Detection.from_event(e).name for e in received[:-1]] == ["alexa"]
    assert 0 < Detection.from_event(received[0]).timestamp < len(alexa) / 16
    assert NotDetected.is_type(received[-1].type)


def test_detections_equal_decoding_alone(wake_port, alexa, kws_recognizer):
    stereo = np.repeat(as_int16(resampled(alexa, 48000))[:, None], 2, axis=1)
    want = [(e.text, round(e.end * 1000)) for e in decode_alone(kws_recognizer, stereo, 48000, downmix=True)]
    received = asyncio.run(exchange(wake_port, [([Detect()], 48000, 2, 2, stereo.tobytes()), SILENCE]))
    assert [(d.name, d.timestamp) for d in map(Detection.from_event, received[:-1])] == want


def test_detect_names_limit_the_wake_words(wake_port, alexa):
    audio = as_int16(alexa).tobytes()
    received = asyncio.run(exchange(wake_port, [([Detect(names=["jarvis"])], 16000, 2, 1, audio)]))
    assert len(received) == 1 and NotDetected.is_type(received[0].type)


def test_a_wake_word_from_text(wake_port):
    """A name the kws model was never trained on is spelled by the asr model."""
    audio = as_int16(read_audio(REPO / "demos" / "audio" / "printing.flac")).tobytes()
    received = asyncio.run(exchange(wake_port, [([Detect(names=["printing"])], 16000, 2, 1, audio), SILENCE]))
    assert [Detection.from_event(e).name for e in received[:-1]] == ["printing"]


def test_bad_input_is_answered_with_an_error(wake_port, alexa):
    half = len(alexa) // 2 * 2
    for streams, words in [
        ([([Detect(names=["#1"])], 16000, 2, 1, bytes(3200))], "keyword '#1' has no letters"),
        ([([Detect()], 16000, 2, 1, bytes(3201))], "not a whole number of 2-byte samples"),
        ([([Detect()], 16000, 5, 1, bytes(3200))], "sample width must be one of"),
    ]:
        received = asyncio.run(exchange(wake_port, streams))
        assert Error.is_type(received[-1].type) and words in Error.from_event(received[-1]).text

    async def rate_change():
        async with wyoming_client(wake_port) as wyoming:
            await wyoming.write_event(AudioStart(16000, 2, 1).event())
            await wyoming.write_event(AudioChunk(16000, 2, 1, as_int16(alexa[:half]).tobytes()).event())
            await wyoming.write_event(AudioChunk(8000, 2, 1, bytes(1600)).event())
            return await wyoming.read_event()

    assert "sample rate changed from 16000 to 8000" in Error.from_event(asyncio.run(rate_change())).text
    received = asyncio.run(exchange(wake_port, [([Detect()], 16000, 2, 1, as_int16(alexa).tobytes()), SILENCE]))
    assert [Detection.from_event(e).name for e in received[:-1]] == ["alexa"]  # still serving


def test_speech_to_text_streams_the_transcript(shared_data, sentence):
    port = free_port()
    audio = as_int16(sentence)
    finals = [
        e.text for e in decode_alone(StreamingRecognizer.from_pretrained("asr"), audio, 16000) if e.kind == "final"
    ]
    assert finals, "the model should transcribe a real sentence"
    with running("streamssm.wyoming", "--model", "asr", "--uri", f"tcp://127.0.0.1:{port}"):

        async def describe_and_transcribe():
            async with wyoming_client(port) as wyoming:
                await wyoming.write_event(Describe().event())
                info = Info.from_event(await wyoming.read_event())
            return info, await exchange(port, [([Transcribe(language="en")], 16000, 2, 1, audio.tobytes())])

        info, received = asyncio.run(describe_and_transcribe())
    assert info.asr[0].supports_transcript_streaming and not info.wake
    assert TranscriptStart.is_type(received[0].type) and TranscriptStop.is_type(received[-1].type)
    transcript = Transcript.from_event(received[-2])
    assert transcript.text == " ".join(finals)
    chunks = [TranscriptChunk.from_event(e).text for e in received[1:-2]]
    assert chunks and "".join(chunks).strip() == transcript.text


def test_help_says_how_to_serve():
    done = subprocess.run(
        [sys.executable, "-m", "streamssm.wyoming", "--help"], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0 and "--uri" in done.stdout and "detection" in done.stdout
