"""What comes before an utterance in a live stream: silence, real noise, other people's speech.

The evaluations start every utterance from a fresh stream; a live stream has run for minutes when
it comes. The benchmarks that ask whether a model still hears after minutes of audio
(benchmarks/kws_context.py, benchmarks/asr_context.py) build their streams from these pieces.
"""

from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE as SR, read_audio
from ..data.augment import Augmenter
from ..data.splits import shared_data_dir
from .sets import speech_set

NOISE_RMS = 0.01  # -40 dBFS


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


class Contexts:
    """Read speech of `talk_set` (a named set or manifest, default vctk-p239's eval part) joined
    with short pauses, and real noise (../shared/data/noise) to lay under audio."""

    def __init__(self, talk_set: str = "vctk-p239", seed: int = 0):
        self.talk = [read_audio(u.audio) for u in speech_set(talk_set)[1] if u.keyword is None]
        self.noise = Augmenter(noise_dir=shared_data_dir() / "noise", seed=seed)

    def speech(self, seconds: float, first: int, pause_s: float = 0.25) -> np.ndarray:
        """At least `seconds` of talk, utterances from the `first`th on (cycling), `pause_s` apart."""
        pieces, length, i = [], 0, first
        while length < seconds * SR:
            pieces += [self.talk[i % len(self.talk)], silence(pause_s)]
            length += len(pieces[-2]) + len(pieces[-1])
            i += 1
        return np.concatenate(pieces)

    def with_noise(self, audio: np.ndarray) -> np.ndarray:
        """`audio` with a real noise recording at NOISE_RMS under all of it."""
        noise = self.noise.noise_segment(len(audio))
        return audio + (noise * NOISE_RMS / np.sqrt(np.mean(noise**2) + 1e-20)).astype(np.float32)
