"""The keyword detector: one detection per rise above threshold, the peak's keyword, chunking-free."""

import numpy as np

from streamssm.decoding.keywords import KeywordDetector
from streamssm.features import FeatureConfig

KEYWORDS = ["three", "thirteen"]
FRAME_S = FeatureConfig().frame_s


def detector(refractory_s=1.0):
    return KeywordDetector(
        KEYWORDS, {"three": 0.5, "thirteen": 0.5}, FRAME_S, smoothing_frames=1, refractory_s=refractory_s
    )


def frames(*runs):
    """Posteriors from (n frames, p_three, p_thirteen) runs."""
    return np.concatenate([np.tile([a, b], (n, 1)) for n, a, b in runs]).astype(np.float32)


def test_a_posterior_held_above_threshold_fires_once():
    events = detector().accept(frames((5, 0, 0), (200, 0.9, 0), (5, 0, 0)))  # 8 s above threshold
    assert [e.text for e in events] == ["three"]


def test_it_fires_again_after_falling_below_threshold_and_the_refractory_period():
    quiet, word = (10, 0, 0), (5, 0.9, 0)
    soon = detector(refractory_s=1.0).accept(frames(quiet, word, quiet, word, quiet))  # 15 frames apart
    later = detector(refractory_s=1.0).accept(frames(quiet, word, (30, 0, 0), word, quiet))  # 35 frames apart
    assert len(soon) == 1 and len(later) == 2
    assert round((later[1].end - later[0].end) / FRAME_S) == 35


def test_the_peak_decides_the_keyword():
    events = detector().accept(frames((5, 0, 0), (2, 0.6, 0.1), (3, 0.3, 0.8), (10, 0, 0)))  # patience: 2 frames
    assert [e.text for e in events] == ["thirteen"] and events[0].score == np.float32(0.8)


def test_frame_by_frame_equals_one_call():
    posteriors = np.random.default_rng(0).random((300, 2)).astype(np.float32) ** 4
    whole = detector().accept(posteriors)
    stepped = detector()
    assert whole == [e for p in posteriors for e in stepped.accept(p[None])]
