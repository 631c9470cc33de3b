"""The TTS voice pools and their fixed train/held-out split, by whole voice and whole engine.

A voice is an (engine, voice) pair (see engines.py). The split, decided once:

- Keyword clips (keyword_clips.py; a shipped model was trained on exactly this split):
  train: espeak-ng dialects en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-029, en-gb-x-gbclan, each
  with 12 variants, and flite kal16, awb, rms, slt (a quarter of the clips);
  held out: espeak-ng en-gb-x-gbcwmd (plain, +f2, +m3), piper "joe", hibari "heart".
- Sentences (sentences.py, streams.py): the keyword pools plus festival.
  train: the keyword train voices, festival kal_diphone and cmu_us_slt_arctic_hts (the clearer
  flite/festival voices get half of the sentences);
  held out: the keyword held-out voices plus festival ked_diphone.
- Held-out engines: piper and hibari, whole. Held-out voices: espeak-ng's gbcwmd dialect,
  festival's ked. Voices built from the same recordings stay on one side: flite kal16 and
  festival kal_diphone (the KAL diphones), flite slt and festival's slt HTS voice (CMU ARCTIC slt).
- Opt-in (Debian contrib/non-free, `--non-free`): MBROLA us1, us2, en1 (through espeak-ng; us3 is
  left out, it lacks diphones) and pico en-US, en-GB join the train side only, so the held-out
  side is the same with or without them.

Each clip is read with a persona drawn by `draw_persona`: speaking rate, pitch and a vocal-tract
(resampling) factor. Sentence corpora use a few fixed personas per voice, each its own speaker.
"""

from __future__ import annotations

import random
import zlib

Voice = tuple[str, str]

ESPEAK_DIALECTS_TRAIN = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"]
ESPEAK_VARIANTS = ["", "+klatt", "+klatt3", "+m1", "+m3", "+m6", "+f1", "+f2", "+f4", "+croak", "+Andy", "+Annie"]
ESPEAK_TRAIN = [("espeak", d + v) for d in ESPEAK_DIALECTS_TRAIN for v in ESPEAK_VARIANTS]
FLITE_TRAIN = [("flite", v) for v in ("kal16", "awb", "rms", "slt")]
FESTIVAL_TRAIN = [("festival", "kal_diphone"), ("festival", "cmu_us_slt_arctic_hts")]

KEYWORD_TRAIN_VOICES = ESPEAK_TRAIN + FLITE_TRAIN * 6  # the clearer voices get a quarter of the clips
KEYWORD_HELDOUT_VOICES = [("espeak", "en-gb-x-gbcwmd" + v) for v in ("", "+f2", "+m3")] + [
    ("piper", "joe"),
    ("hibari", "heart"),
]

SENTENCE_TRAIN_VOICES = ESPEAK_TRAIN + (FLITE_TRAIN + FESTIVAL_TRAIN) * 12  # clearer voices: half the sentences
SENTENCE_HELDOUT_VOICES = KEYWORD_HELDOUT_VOICES + [("festival", "ked_diphone")]
NON_FREE_TRAIN_VOICES = [
    ("mbrola", "mb-us1"),
    ("mbrola", "mb-us2"),
    ("mbrola", "mb-en1"),
    ("pico", "en-US"),
    ("pico", "en-GB"),
]
HELDOUT_ENGINES = {"piper", "hibari"}

PERSONAS_PER_VOICE = 4


def sentence_voices(split: str, non_free: bool = False) -> list[Voice]:
    """The weighted voice list of one side of the sentence split ("train" or "heldout")."""
    if split == "train":
        return SENTENCE_TRAIN_VOICES + (NON_FREE_TRAIN_VOICES * 6 if non_free else [])
    if split == "heldout":
        return list(SENTENCE_HELDOUT_VOICES)
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def draw_persona(seed: int) -> tuple[float, int, float]:
    """(rate 0.75-1.3, pitch 25-75 on espeak-ng's 0-99 scale, vocal-tract factor 0.88-1.12)."""
    r = random.Random(seed)
    return r.uniform(0.75, 1.3), r.randint(25, 75), r.uniform(0.88, 1.12)


def persona_seed(voice: Voice, persona: int) -> int:
    """The seed of one of a voice's fixed personas (0 .. PERSONAS_PER_VOICE - 1)."""
    return zlib.crc32(f"{voice[0]}:{voice[1]}:{persona}".encode())
