"""StreamingRecognizer with ASR models: partial and final events that do not depend on chunking or
batching, endpointing on trailing silence and utterance length, fixed state size over a long
stream, the transcribe and mic command lines, and option errors."""

import json

import numpy as np
import pytest
import soundfile
import torch

from streamssm import mic, transcribe
from streamssm.decoding.transcript import Transcript
from streamssm.events import Event, Word
from streamssm.models import save_model
from streamssm.decoding.speech import SpeechDecoding
from streamssm.recognizer import StreamingRecognizer
from stream_helpers import alone_and_batched, events_of
from asr_helpers import noise_bursts, tiny_asr_model, tiny_tokenizer

SEARCHES = ["transducer", "ctc", "ctc-lm"]
ENDPOINT = dict(trailing_silence_s=0.4, max_utterance_s=3.0)


@pytest.fixture(scope="module")
def model():
    return tiny_asr_model()


@pytest.fixture(scope="module")
def audio():
    return noise_bursts(12.0)


def comparable(events):
    return [(e.kind, e.text, e.start, e.end, e.words) for e in events]


@pytest.mark.parametrize("search", SEARCHES)
def test_events_do_not_depend_on_chunking(model, audio, search):
    rec = StreamingRecognizer(model, search=search, endpoint=ENDPOINT)
    whole = events_of(rec.create_stream(), audio, [len(audio)])
    finals = [e for e in whole if e.kind == "final"]
    assert len(finals) >= 3 and all(e.words and e.text == " ".join(w.text for w in e.words) for e in finals)
    assert all(0 < e.score <= 1 and e.start < e.end for e in whole)
    rng = np.random.default_rng(0)
    for sizes in ([640] * (len(audio) // 640 + 1), list(rng.integers(1, 6000, len(audio) // 1000))):
        chunked = events_of(rec.create_stream(), audio, sizes)
        assert comparable(chunked) == comparable(whole)
        assert np.allclose([e.score for e in chunked], [e.score for e in whole], atol=1e-4)


@pytest.mark.parametrize("search", SEARCHES)
def test_batched_streams_equal_single_streams(model, audio, search):
    rec = StreamingRecognizer(model, search=search, endpoint=ENDPOINT)
    alone, batched = alone_and_batched(rec, audio, [0, 7000, 40000])  # streams of different ages and lengths
    for a, b in zip(alone, batched):
        assert comparable(a) == comparable(b)


@pytest.mark.parametrize("search", SEARCHES)
def test_state_size_is_constant_over_a_long_stream_with_endpoints(model, search):
    stream = StreamingRecognizer(model, search=search, endpoint=ENDPOINT).create_stream()
    size, finals = stream.state_nbytes, []
    audio = noise_bursts(40.0, seed=1)
    for start in range(0, len(audio), 4000):
        finals += [e for e in stream.accept_waveform(audio[start : start + 4000], 16000) if e.kind == "final"]
        assert stream.state_nbytes == size
    assert len(finals) >= 10
    assert all(e.end - e.start <= ENDPOINT["max_utterance_s"] + 0.06 for e in finals)  # the text restarts at each final


def crafted_decoder(search, **endpoint):
    """A model whose search emits exactly the label written into each encoder frame (frames are
    one-hot over the first 32 ids: id 0 means blank), so the frame pattern sets the emissions."""
    model = tiny_asr_model()
    with torch.no_grad():
        for layer in (model.ctc_head, model.joiner.output):
            layer.weight.zero_()
            layer.weight[:32] = 10 * torch.eye(32)
            layer.bias.zero_()
        model.joiner.encoder_proj.weight.copy_(torch.eye(32))
        model.joiner.encoder_proj.bias.zero_()
        model.joiner.decoder_proj.weight.zero_()
        model.joiner.decoder_proj.bias.zero_()
    return SpeechDecoding(model, search=search, endpoint=endpoint, max_symbols_per_frame=1)


def feed_frames(decoder, stream, labels):
    """Feed one frame at a time; the events of each frame (CTC searches take log-probabilities,
    here with every other token far below the frame's label)."""
    frames = 3 * torch.nn.functional.one_hot(torch.tensor(labels), 32).float()
    if decoder.head == "ctc":
        frames = (10 * frames).log_softmax(-1)
    return [decoder.decode(frame[None, None], torch.tensor([1]), [stream])[0] for frame in frames]


@pytest.mark.parametrize("search", SEARCHES)
def test_final_comes_after_the_configured_trailing_silence(search):
    decoder = crafted_decoder(search, trailing_silence_s=0.2, max_utterance_s=10.0)  # 5 frames of silence
    tokenizer = decoder.model.tokenizer
    a, b, c = [i for i in range(2, 32) if tokenizer.starts_word[i] and tokenizer.decode([i])][:3]
    stream = decoder.new_stream()
    per_frame = feed_frames(decoder, stream, [0, 0, 0, a, 0, b, c] + [0] * 8 + [b])
    kinds = [[e.kind for e in events] for events in per_frame]
    assert kinds == (
        [[]] * 3
        + [["partial"], [], ["partial"], ["partial"]]  # frames 0-6
        + [[]] * 4
        + [["final"]]
        + [[]] * 3
        + [["partial"]]
    )  # 5 silent frames after frame 6
    words = [tokenizer.decode([i]) for i in (a, b, c)]
    final = per_frame[11][0]
    assert final.text == " ".join(words) and per_frame[6][0].text == final.text
    assert final.words == (Word(words[0], 0.12, 0.175), Word(words[1], 0.2, 0.255), Word(words[2], 0.24, 0.295))
    assert (final.start, final.end) == (0.12, 0.295)
    assert per_frame[-1][0].text == words[1]  # a new utterance: the text started again
    assert [e.kind for e in decoder.flush(stream)] == ["final"] and decoder.flush(stream) == []


@pytest.mark.parametrize("search", SEARCHES)
def test_final_at_the_maximum_utterance_length(search):
    decoder = crafted_decoder(search, trailing_silence_s=1.0, max_utterance_s=0.4)  # 10 frames
    tokenizer = decoder.model.tokenizer
    a, b = [i for i in range(2, 32) if tokenizer.starts_word[i] and tokenizer.decode([i])][:2]
    stream = decoder.new_stream()
    per_frame = feed_frames(decoder, stream, [0, 0] + [a, b] * 8)
    finals = [(t, e) for t, events in enumerate(per_frame) for e in events if e.kind == "final"]
    assert [t for t, _ in finals] == [11]
    assert len(finals[0][1].words) == 10 and finals[0][1].start == 0.08


def test_transcript_words_times_and_partials():
    tokenizer = tiny_tokenizer()
    transcript = Transcript(tokenizer, capacity=8, frame_s=0.04, frame_span_s=0.055)
    assert transcript.partial() is None and transcript.event("final") is None
    for token, frame in zip(tokenizer.encode("the fox"), [3, 4, 9, 9, 10]):
        transcript.append(token, frame, -0.1)
    partial = transcript.partial()
    assert partial.words == (Word("the", 0.12, 0.215), Word("fox", 0.36, 0.455))
    assert partial.stable == 1  # "fox" may still grow
    word_mark = tokenizer.processor.piece_to_id("\u2581")  # a lone word boundary adds no text...
    transcript.append(word_mark, 11, -0.1)
    partial = transcript.partial()
    assert partial.text == "the fox" and partial.stable == 2  # ...but ends "fox"
    transcript.append(word_mark, 11, -0.1)
    assert transcript.partial() is None
    transcript.append(tokenizer.encode("s")[-1], 11, -0.1)
    final = transcript.event("final")
    assert final.text == "the fox s" and final.score == pytest.approx(np.exp(-0.1))
    with pytest.raises(RuntimeError, match="transcript full"):
        transcript.append(word_mark, 12, -0.1)
    transcript.clear()
    assert len(transcript) == 0 and transcript.event("final") is None


def test_transcribe_command_line(model, audio, tmp_path, capsys):
    folder = save_model(model, tmp_path / "asr")
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, audio, 16000)
    rec = StreamingRecognizer(model, search="ctc")
    expected = " ".join(
        e.text for e in events_of(rec.create_stream(), audio, [2560] * (len(audio) // 2560 + 1)) if e.kind == "final"
    )
    assert transcribe.main([str(wav), "--model", str(folder), "--search", "ctc", "--chunk-ms", "160"]) == 0
    assert capsys.readouterr().out == f"{wav}: {expected}\n"
    for mode in ("streaming", "offline"):
        assert transcribe.main([str(wav), "--model", str(folder), "--mode", mode, "--json", "--beam", "2"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["file"] == str(wav) and result["text"] and result["utterances"][0]["words"]
        assert result["text"] == " ".join(u["text"] for u in result["utterances"])
    assert transcribe.main([str(tmp_path / "missing.wav"), "--model", str(folder)]) == 1
    assert "audio file not found" in capsys.readouterr().err
    assert transcribe.main([str(wav), "--model", str(tmp_path / "nope")]) == 2


def test_mic_command_line_shows_partial_and_final_text(model, audio, tmp_path, capsys):
    folder = save_model(model, tmp_path / "asr")
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, audio[:48000], 16000)
    assert mic.main(["--model", str(folder), "--input", str(wav), "--fast"]) == 0
    out = capsys.readouterr().out
    assert "\r" in out and "partial" in out and "final" in out
    assert mic.main(["--model", str(folder), "--input", str(wav), "--fast", "--json"]) == 0
    kinds = {json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()}
    assert kinds == {"partial", "final"}


def test_options_and_errors(model):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['thresholds'\] for speech recognition"):
        StreamingRecognizer(model, thresholds=0.5)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['search'\] for keyword spotting"):
        StreamingRecognizer(model, keywords=["yes"], search="ctc")
    with pytest.raises(ValueError, match="search must be one of"):
        StreamingRecognizer(model, search="beam")
    with pytest.raises(ValueError, match="endpoint times must be > 0"):
        StreamingRecognizer(model, endpoint=dict(trailing_silence_s=0))
    stream = StreamingRecognizer(model).create_stream()
    with pytest.raises(ValueError, match="NaN"):
        stream.accept_waveform(np.full(100, np.nan, np.float32), 16000)
    stream.finish()
    with pytest.raises(RuntimeError, match="finished"):
        stream.accept_waveform(np.zeros(100, np.float32), 16000)


def test_event_dict_keeps_its_fields():
    keyword = Event("keyword", "alexa", 0.1, 0.5, 0.9)
    assert keyword.to_dict() == {"kind": "keyword", "text": "alexa", "start": 0.1, "end": 0.5, "score": 0.9}
    final = Event("final", "hi", 0.1, 0.5, 0.9, (Word("hi", 0.1, 0.5),))
    assert final.to_dict()["words"] == [{"text": "hi", "start": 0.1, "end": 0.5}]
