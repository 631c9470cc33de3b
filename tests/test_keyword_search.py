"""Keywords from text: the CTC keyword search (decoding.keyword_search) on made-up token
log-probabilities and on the shipped asr model's output for real recordings; trained and text
keywords in one stream (spotting); bad keyword text; the servers' --keywords."""

import numpy as np
import pytest
import torch

from streamssm import decode_loop, serve, wyoming
from streamssm.audio import read_audio
from streamssm.decoding.keyword_search import KeywordSearch, default_threshold
from streamssm.models import load_model
from streamssm.recognizer import StreamingRecognizer
from streamssm.tokenizer import BLANK_ID
from stream_helpers import alone_and_batched, events_of
from virtual_mic import REPO

AUDIO = REPO / "demos" / "audio"


@pytest.fixture(scope="module")
def asr():
    return load_model("asr")


def spelled(model, pieces: list[str | None], frames_each: int = 2) -> torch.Tensor:
    """Log-probabilities (T, vocabulary) whose best token spells `pieces` (texts, None: blank
    frames), each for `frames_each` frames, a blank frame between two."""
    labels = []
    for piece in pieces:
        for token in [BLANK_ID] if piece is None else model.tokenizer.encode(piece):
            labels += [token] * frames_each + [BLANK_ID]
    logits = torch.full((len(labels), model.config.vocab_size), -8.0)
    logits[torch.arange(len(labels)), labels] = 0.0
    return logits.log_softmax(-1)


def decode_in_chunks(search: KeywordSearch, logprobs: torch.Tensor, sizes) -> list:
    stream, events, at = search.new_stream(), [], 0
    for size in sizes:
        piece = logprobs[at : at + size]
        events += search.decode(piece[None], torch.tensor([len(piece)]), [stream])[0]
        at += size
    return events + search.flush(stream)


def test_a_spelled_keyword_fires_once_at_its_place(asr):
    search = KeywordSearch(asr, ["lights on", "hey streamssm"])
    frame_s = asr.config.features.frame_s
    logprobs = spelled(asr, [None] * 10 + ["the cat sat"] + [None] * 5 + ["lights on"] + [None] * 20)
    events = decode_in_chunks(search, logprobs, [len(logprobs)])
    assert [e.text for e in events] == ["lights on"]
    (event,) = events
    first = 3 * (10 + len(asr.tokenizer.encode("the cat sat")) + 5)  # frame of its first token
    assert event.start == pytest.approx(first * frame_s) and event.score == pytest.approx(1.0, abs=1e-3)
    assert event.end > event.start + 3 * frame_s * (len(asr.tokenizer.encode("lights on")) - 1)
    assert decode_in_chunks(search, spelled(asr, [None] * 10 + ["the night is on"]), [40]) == []


def test_events_do_not_depend_on_chunking(asr):
    search = KeywordSearch(asr, ["lights on", "lights off"])
    said = [None] * 4 + ["lights on"] + [None] * 30 + ["lights off please lights on"] + [None] * 3
    logprobs = spelled(asr, said) + 0.3 * torch.randn(1).item()  # any offset: ratios are unchanged
    whole = decode_in_chunks(search, logprobs, [len(logprobs)])
    assert [e.text for e in whole] == ["lights on", "lights off", "lights on"]
    rng = np.random.default_rng(0)
    for sizes in ([1] * len(logprobs), rng.integers(1, 9, len(logprobs)).tolist()):
        assert decode_in_chunks(search, logprobs, sizes) == whole


def test_thresholds_from_the_text_and_bad_text(asr):
    assert default_threshold("hey streamssm") < default_threshold("alexa") < default_threshold("on") < 1
    assert KeywordSearch(asr, ["alexa"], thresholds=0.4).thresholds == {"alexa": 0.4}
    for keywords, words in (
        (["1234"], "'1234' has no letters"),
        (["  !? "], "has no letters"),
        ([""], "has no letters"),
        ([], "at least one keyword"),
        (["Alexa", "alexa!"], "the same text twice"),
    ):
        with pytest.raises(ValueError, match=words):
            KeywordSearch(asr, keywords)
    with pytest.raises(ValueError, match="must be in"):
        KeywordSearch(asr, ["alexa"], thresholds={"alexa": 1.5})
    with pytest.raises(ValueError, match="unknown keyword 'siri'"):
        KeywordSearch(asr, ["alexa"], thresholds={"siri": 0.5})


@pytest.fixture(scope="module")
def printing():
    """A held-out real sentence that says "printing" ("... the age of fine printing in Italy.")."""
    return read_audio(AUDIO / "printing.flac")


@pytest.fixture(scope="module")
def alexa_then_printing(printing):
    return np.concatenate([read_audio(AUDIO / "alexa.flac"), printing])


def texts(events) -> list[str]:
    return [e.text for e in events]


def test_a_text_keyword_is_heard_where_it_is_said_and_nowhere_else(printing):
    rec = StreamingRecognizer.from_pretrained("asr", keywords=["printing", "smart mirror"])
    assert rec.task == "kws" and rec.keywords == ["printing", "smart mirror"]
    (event,) = events_of(rec.create_stream(), printing, [len(printing)])
    assert (event.kind, event.text) == ("keyword", "printing") and 2.3 < event.start < event.end < 3.3
    assert event.score > rec.thresholds["printing"]
    for other in ("alexa.flac", "hey_computer.flac"):
        audio = read_audio(AUDIO / other)
        assert events_of(rec.create_stream(), audio, [len(audio)]) == []


def test_real_audio_events_do_not_depend_on_chunking_or_batching(printing):
    rec = StreamingRecognizer.from_pretrained("asr", keywords=["printing", "fine printing"])
    whole = events_of(rec.create_stream(), printing, [len(printing)])
    assert texts(whole) == ["printing"]
    sizes = np.random.default_rng(0).integers(1, 9000, len(printing) // 1000).tolist()
    for chunked in (
        events_of(rec.create_stream(), printing, [1600] * 60),
        events_of(rec.create_stream(), printing, sizes),
    ):
        assert [(e.text, e.start, e.end) for e in chunked] == [(e.text, e.start, e.end) for e in whole]
        assert np.allclose([e.score for e in chunked], [e.score for e in whole], atol=1e-4)
    alone, batched = alone_and_batched(rec, np.concatenate([printing, printing]), [0, 12000, 40000])
    assert [texts(a) for a in alone] == [texts(b) for b in batched] and texts(alone[0]) == ["printing"] * 2


def test_trained_and_text_keywords_in_one_stream(alexa_then_printing):
    audio = alexa_then_printing
    # alexa's shipped threshold (0.99) is above its score where a stream starts 0.5 s into the file
    mixed = StreamingRecognizer.from_pretrained("kws", keywords=["alexa", "printing"], thresholds={"alexa": 0.9})
    assert mixed.keywords == ["alexa", "printing"] and set(mixed.thresholds) >= {"alexa", "printing"}
    stream = mixed.create_stream()
    nbytes = stream.state_nbytes
    events = events_of(stream, audio, [2560] * (len(audio) // 2560 + 1))
    assert texts(events) == ["alexa", "printing"] and stream.state_nbytes == nbytes
    trained = events_of(
        StreamingRecognizer.from_pretrained("kws", keywords=["alexa"], thresholds={"alexa": 0.9}).create_stream(),
        audio,
        [len(audio)],
    )
    text = events_of(
        StreamingRecognizer.from_pretrained("asr", keywords=["printing"]).create_stream(), audio, [len(audio)]
    )
    assert [(e.text, e.end) for e in events] == [(e.text, e.end) for e in trained + text]
    alone, batched = alone_and_batched(mixed, audio, [0, 8000])
    assert [texts(a) for a in alone] == [texts(b) for b in batched] == [["alexa", "printing"]] * 2
    only_text = StreamingRecognizer.from_pretrained("kws", keywords=["printing"])
    assert [(e.text, e.end) for e in events_of(only_text.create_stream(), audio, [len(audio)])] == [
        (e.text, e.end) for e in text
    ]


def test_keyword_options_are_checked():
    with pytest.raises(ValueError, match="'' has no letters"):
        StreamingRecognizer.from_pretrained("kws", keywords=["alexa", ""])
    with pytest.raises(ValueError, match="threshold for 'printing' must be in"):
        StreamingRecognizer.from_pretrained("kws", keywords=["alexa", "printing"], thresholds={"printing": 2})
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['endpoint'\\] for keyword spotting"):
        StreamingRecognizer.from_pretrained("asr", keywords=["printing"], endpoint={"trailing_silence_s": 1})


def test_servers_take_text_keywords():
    recognizers, _ = decode_loop.decode_loop_of(serve.parse_args(["--model", "kws", "--keywords", "alexa", "printing"]))
    assert recognizers.default.keywords == ["alexa", "printing"]
    recognizers, _ = decode_loop.decode_loop_of(serve.parse_args(["--model", "asr", "--keywords", "printing"]))
    assert recognizers.default.task == "kws" and recognizers.default.keywords == ["printing"]
    recognizers, _ = decode_loop.decode_loop_of(wyoming.parse_args(["--model", "asr", "--keywords", "printing"]))
    info = wyoming.describe(recognizers)
    assert [m.name for m in info.wake[0].models] == ["printing"] and not info.asr
    assert serve.main(["--model", "kws", "--keywords", "42", "--port", "0"]) == 2
