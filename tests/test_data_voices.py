"""Every installed TTS engine reads a sentence; the voice split is fixed and never overlaps."""

import zlib

import numpy as np
import pytest

from streamssm.data import voices
from streamssm.data.engines import SR, engine_missing, synthesize, synthesize_with_words
from streamssm.text import normalize_text

SENTENCE = "The quick brown fox jumped over the lazy dog's back."
ONE_VOICE = {
    "espeak": "en-gb+m3",
    "flite": "kal16",
    "festival": "kal_diphone",
    "piper": "joe",
    "hibari": "heart",
    "mbrola": "mb-us1",
    "pico": "en-US",
}


@pytest.mark.parametrize("engine", sorted(ONE_VOICE))
def test_engine_reads_a_sentence(engine):
    # CI installs the free engines (scripts/install_tts.sh); mbrola and pico are opt-in (--non-free)
    if reason := engine_missing(engine):
        pytest.skip(reason)
    audio = synthesize(engine, ONE_VOICE[engine], SENTENCE, rate=1.2, pitch=40)
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert 1.0 < len(audio) / SR < 6.0 and np.abs(audio).max() > 0.01


@pytest.mark.parametrize(
    "engine, voice", [("espeak", "en-us+f2"), ("espeak", "en-gb"), ("festival", "cmu_us_slt_arctic_hts")]
)
def test_word_times(engine, voice):
    if reason := engine_missing(engine):
        pytest.skip(reason)
    audio, words = synthesize_with_words(engine, voice, SENTENCE, 1.0, 50)
    assert [w for w, _, _ in words] == normalize_text(SENTENCE).split()
    starts = [s for _, s, _ in words]
    assert starts == sorted(starts) and all(s <= e for _, s, e in words)
    assert words[-1][2] <= len(audio) / SR + 0.01


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(ValueError, match="no voice"):
        synthesize_with_words("espeak", "xx-nonexistent", "hello", 1.0, 50)
    with pytest.raises(ValueError, match="unknown engine"):
        synthesize("nope", "x", "hello", 1.0, 50)


def test_keyword_split_is_the_one_a_model_was_trained_on():
    assert len(voices.KEYWORD_TRAIN_VOICES) == 96 and len(voices.KEYWORD_HELDOUT_VOICES) == 5
    assert zlib.crc32(repr((voices.KEYWORD_TRAIN_VOICES, voices.KEYWORD_HELDOUT_VOICES)).encode()) == 0xEE2D5AE3


@pytest.mark.parametrize("non_free", [False, True])
def test_sentence_split_holds_out_whole_voices_and_engines(non_free):
    train, heldout = set(voices.sentence_voices("train", non_free)), set(voices.sentence_voices("heldout"))
    assert train and heldout and not train & heldout
    assert not set(voices.KEYWORD_TRAIN_VOICES) & heldout and not set(voices.KEYWORD_HELDOUT_VOICES) & train
    train_engines = {engine for engine, _ in train}
    assert len(voices.HELDOUT_ENGINES) >= 2 and not voices.HELDOUT_ENGINES & train_engines
    assert voices.HELDOUT_ENGINES <= {engine for engine, _ in heldout}
    # a held-out espeak-ng dialect is held out with all its variants
    heldout_dialects = {v.split("+")[0] for e, v in heldout if e == "espeak"}
    assert not {v.split("+")[0] for e, v in train if e == "espeak"} & heldout_dialects
    # voices built from the same recordings stay on one side
    for same_speaker in (
        {("flite", "kal16"), ("festival", "kal_diphone")},
        {("flite", "slt"), ("festival", "cmu_us_slt_arctic_hts")},
    ):
        assert same_speaker <= train or same_speaker <= heldout


def test_personas_are_fixed_and_distinct():
    seeds = [voices.persona_seed(("flite", "slt"), k) for k in range(voices.PERSONAS_PER_VOICE)]
    personas = [voices.draw_persona(seed) for seed in seeds]
    assert personas == [voices.draw_persona(seed) for seed in seeds] and len(set(personas)) == len(personas)
    for rate, pitch, tract in personas:
        assert 0.75 <= rate <= 1.3 and 25 <= pitch <= 75 and 0.88 <= tract <= 1.12
