"""The keyword detector: one detection per rise above threshold, the peak's keyword, chunking-free."""

import numpy as np
import torch

from streamssm.decoding.keywords import KeywordDetector, moving_average
from streamssm.features import FeatureConfig

KEYWORDS = ["three", "thirteen"]
FRAME_S = FeatureConfig().frame_s


def detector(threshold=0.5, refractory_s=1.0, repeat_s=0.0, smoothing_frames=1):
    return KeywordDetector(
        KEYWORDS,
        {"three": threshold, "thirteen": threshold},
        FRAME_S,
        refractory_s=refractory_s,
        repeat_s=repeat_s,
        smoothing_frames=smoothing_frames,
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


def test_the_same_keyword_waits_out_the_repeat_period_and_another_does_not():
    """A posterior that rises again 1.4 s after a keyword (35 frames) is not reported with a 2 s
    repeat period; another keyword at the same distance is, after the 1 s refractory period."""
    quiet, three, thirteen = (10, 0, 0), (5, 0.9, 0), (5, 0, 0.9)
    repeated = detector(repeat_s=2.0).accept(frames(quiet, three, (30, 0, 0), three, quiet))
    followed = detector(repeat_s=2.0).accept(frames(quiet, three, (30, 0, 0), thirteen, quiet))
    much_later = detector(repeat_s=2.0).accept(frames(quiet, three, (50, 0, 0), three, quiet))
    assert [e.text for e in repeated] == ["three"]
    assert [e.text for e in followed] == ["three", "thirteen"]
    assert [e.text for e in much_later] == ["three", "three"]


def test_the_peak_decides_the_keyword():
    events = detector().accept(frames((5, 0, 0), (2, 0.6, 0.1), (3, 0.3, 0.8), (10, 0, 0)))  # patience: 2 frames
    assert [e.text for e in events] == ["thirteen"] and events[0].score == np.float32(0.8)


def test_frame_by_frame_equals_one_call():
    posteriors = np.random.default_rng(0).random((300, 2)).astype(np.float32) ** 4
    whole = detector().accept(posteriors)
    stepped = detector()
    assert whole == [e for p in posteriors for e in stepped.accept(p[None])]


def test_smoothing_is_the_training_loss_moving_average_however_the_stream_is_cut():
    """The detector's numpy smoothing (its per-chunk path) gives moving_average's numbers (training and
    threshold calibration use that one), and the same events, for any cut of the stream."""
    posteriors = np.random.default_rng(1).random((200, 2)).astype(np.float32) ** 3
    expected = moving_average(torch.from_numpy(posteriors), 3).numpy()
    cuts = np.cumsum(np.random.default_rng(2).integers(1, 9, 60))
    events = {}
    for name, pieces in {"whole": [posteriors], "ragged": np.split(posteriors, cuts[cuts < 200])}.items():
        smoothing, events[name] = detector(0.3, smoothing_frames=3), []
        detecting = detector(0.3, smoothing_frames=3)
        assert np.allclose(np.concatenate([smoothing.smooth(p) for p in pieces]), expected, atol=1e-6), name
        for piece in pieces:
            events[name] += detecting.accept(piece)
    assert events["whole"] and events["whole"] == events["ragged"]
