"""The CTC word search: its language model, a lexicon word chosen over the greedy near miss, real
speech through the shipped model (fewer word errors than greedy CTC, stable words that stay,
partials that the final seldom revises, the same text streamed in any chunks as offline), fixed
state, and option errors."""

import math

import numpy as np
import pytest

from streamssm.audio import read_audio
from streamssm.data.splits import real_split
from streamssm.decoding.speech import SpeechDecoding, decode_offline
from streamssm.decoding.word_lm import WordLM
from streamssm.decoding.word_search import WordSearch, WordSearchConfig
from streamssm.eval.asr import score
from streamssm.models import load_model
from streamssm.recognizer import StreamingRecognizer
from streamssm.tokenizer import BLANK_ID
from stream_helpers import events_of
from virtual_mic import REPO

UTTERANCES = 16


@pytest.fixture(scope="module")
def asr():
    return load_model("asr")


@pytest.fixture(scope="module")
def printing():
    """A held-out real sentence (ljs-reread) that ends "... the age of fine printing in Italy"."""
    return read_audio(REPO / "demos" / "audio" / "printing.flac")


def small_lm() -> WordLM:
    words = {"the": 50, "fifteenth": 5, "fifteen": 8, "century": 10, "sentry": 2, "cent": 3}
    return WordLM(words, {("fifteenth", "century"): 9, ("fifteenth", "the"): 1, ("the", "fifteen"): 4})


def test_language_model_probabilities():
    lm = small_lm()
    assert lm.is_prefix("fifteent") and lm.is_prefix("cen") and not lm.is_prefix("centz")
    assert lm.word_id("sent") is None
    ids = [lm.word_id(w) for w in lm.words]
    for previous in (None, lm.word_id("fifteenth"), lm.word_id("century")):  # with, without pairs, start
        assert math.isclose(sum(math.exp(lm.logprob(previous, w, 0.5)) for w in ids), 1.0)
    century, fifteenth = lm.word_id("century"), lm.word_id("fifteenth")
    assert math.isclose(math.exp(lm.logprob(fifteenth, century, 0.5)), 0.5 * 0.9 + 0.5 * 10 / 78)
    assert lm.logprob(fifteenth, century, 0.0) == lm.logprob(None, century, 0.5)  # unigrams only
    assert lm.logprob(lm.word_id("cent"), century, 0.5) == lm.logprob(None, century, 0.5)  # no listed pairs: P(w)


def spelled_frames(tokenizer, text: str, misspelt: dict[int, int], vocab: int) -> np.ndarray:
    """CTC log-probabilities that say `text`, one token a frame between blank frames; at token
    position i in `misspelt`, another token is a little likelier than the right one."""
    rows = []
    for i, token in enumerate(tokenizer.encode(text)):
        row = np.full(vocab, 1e-4)
        row[token] = 0.4 if i in misspelt else 0.9
        if i in misspelt:
            row[misspelt[i]] = 0.5
        rows += [row, np.eye(vocab)[BLANK_ID] * 0.99 + 1e-4]
    return np.log(np.array(rows) / np.sum(rows, 1, keepdims=True))


def test_the_lexicon_word_beats_the_greedy_near_miss(asr):
    tokenizer = asr.tokenizer
    tokens = tokenizer.encode("fifteenth century")
    wrong = tokenizer.processor.piece_to_id("s")  # "...centsury": no English word
    logprobs = spelled_frames(tokenizer, "fifteenth century", {len(tokens) - 2: wrong}, tokenizer.vocab_size)
    greedy = tokenizer.decode([int(t) for t in logprobs.argmax(1) if t != BLANK_ID])
    assert greedy != "fifteenth century"
    search = WordSearch(tokenizer, small_lm())
    assert tokenizer.decode([t for t, _, _ in search.whole(logprobs)]) == "fifteenth century"
    without_lexicon = WordSearch(tokenizer, small_lm(), WordSearchConfig(oov_score=0.0, alpha=0.0, beta=0.0))
    assert tokenizer.decode([t for t, _, _ in without_lexicon.whole(logprobs)]) == greedy


@pytest.mark.parametrize("name", ["ljs-reread", "speechocean762"])
def test_real_speech_has_fewer_word_errors_than_greedy_ctc(name):
    """Word errors over the first utterances of a real held-out set (one clip can go either way)."""
    utterances = real_split(name)["eval"][:UTTERANCES]
    audios = [read_audio(u.audio) for u in utterances]
    errors = {}
    for search in ("ctc", "ctc-lm"):
        rec = StreamingRecognizer.from_pretrained("asr", search=search)
        errors[search] = 0
        for u, audio in zip(utterances, audios):
            events = rec.create_stream().run([(audio, 16000)])
            counts = score(u.text, " ".join(e.text for e in events if e.kind == "final"))
            errors[search] += counts["substitutions"] + counts["deletions"] + counts["insertions"]
    assert errors["ctc-lm"] < errors["ctc"], errors


def test_stable_words_stay():
    """A partial's stable words begin every later event of its utterance, so they can be sent on
    for good (the Wyoming server's transcript chunks)."""
    rec = StreamingRecognizer.from_pretrained("asr", search="ctc-lm", endpoint={"max_utterance_s": 60})
    sentence = read_audio(real_split("ljs-reread")["eval"][0].audio)  # 7.9 s: words settle before its end
    events = events_of(rec.create_stream(), sentence, [1280] * (len(sentence) // 1280 + 1))
    assert events[-1].kind == "final" and events[-1].stable == len(events[-1].words)
    partials = events[:-1]
    assert any(e.stable for e in partials) and any(e.stable < len(e.words) - 1 for e in partials)
    for i, event in enumerate(partials):
        for later in events[i + 1 :]:
            assert later.words[: event.stable] == event.words[: event.stable]
    assert [e.stable for e in partials] == sorted(e.stable for e in partials)


def test_partials_already_say_what_the_final_says():
    """Partial text scores the word in progress as a complete word, as the final does, so that the
    text a listener sees stops changing when the speaker stops, not at the endpoint (before, the final
    revised its last partial in more than half of the real utterances: models/asr/README.md)."""
    rec = StreamingRecognizer.from_pretrained("asr", search="ctc-lm", endpoint={"max_utterance_s": 60})
    revised = 0
    for utterance in real_split("ljs-reread")["eval"][:8]:
        events = list(rec.create_stream().run([(read_audio(utterance.audio), 16000)]))
        for before, final in zip(events, events[1:]):
            revised += final.kind == "final" and before.kind == "partial" and before.text != final.text
    assert revised <= 1


def test_real_speech_streams_as_offline_in_any_chunks(asr, printing):
    rec = StreamingRecognizer.from_pretrained("asr", search="ctc-lm", endpoint={"max_utterance_s": 60})
    whole = events_of(rec.create_stream(), printing, [len(printing)])
    finals = [e for e in whole if e.kind == "final"]
    assert len(finals) == 1
    sizes = np.random.default_rng(1).integers(1, 9000, len(printing) // 1000).tolist()
    for chunks in ([640] * (len(printing) // 640 + 1), sizes):
        chunked = events_of(rec.create_stream(), printing, chunks)
        assert [(e.kind, e.text, e.words, e.stable) for e in chunked] == [
            (e.kind, e.text, e.words, e.stable) for e in whole
        ]
    (offline,) = decode_offline(asr, printing, 16000, search="ctc-lm")
    assert offline.text == finals[0].text


def test_state_is_fixed_and_utterances_end_at_the_maximum_length(printing):
    rec = StreamingRecognizer.from_pretrained("asr", search="ctc-lm", endpoint={"max_utterance_s": 2.0})
    stream, audio = rec.create_stream(), np.tile(printing, 4)
    size, finals = stream.state_nbytes, []
    for start in range(0, len(audio), 4000):
        finals += [e for e in stream.accept_waveform(audio[start : start + 4000], 16000) if e.kind == "final"]
        assert stream.state_nbytes == size
    finals += stream.finish()
    assert len(finals) >= 6 and all(e.end - e.start <= 2.0 + 0.06 for e in finals)


def test_option_errors(asr):
    with pytest.raises(ValueError, match="search must be one of"):
        SpeechDecoding(asr, search="lm")
    with pytest.raises(ValueError, match="word_search options are for search='ctc-lm'"):
        SpeechDecoding(asr, search="ctc", word_search={"beam": 4})
    with pytest.raises(ValueError, match=r"bigram_weight must be in \[0, 1\)"):
        SpeechDecoding(asr, search="ctc-lm", word_search={"bigram_weight": 1.0})
    with pytest.raises(ValueError, match="beam must be >= 1"):
        SpeechDecoding(asr, search="ctc-lm", word_search={"beam": 0})
    with pytest.raises(ValueError, match=r"unknown word_search option\(s\) \['width'\]"):
        StreamingRecognizer.from_pretrained("asr", search="ctc-lm", word_search={"width": 4})
    config = SpeechDecoding(asr, search="ctc-lm", word_search={"beam": 4}).search.config
    assert config.beam == 4 and config.alpha == asr.config.word_search.alpha  # the model's, but for the beam
