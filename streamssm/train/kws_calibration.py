"""Per-keyword thresholds of a keyword spotter, set on negative speech it did not train on so that
each keyword group (wake words, commands, digits) stays under a target number of false alarms per
hour; the posteriors are smoothed as the detector smooths them (`decoding.keywords.moving_average`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from tqdm import tqdm

from ..audio import SAMPLE_RATE as SR
from ..decoding.keywords import moving_average
from ..features import FrontEnd

PAUSE = np.zeros(SR // 4, np.float32)  # between clips of the calibration stream
STEP = 1e-3  # a threshold sits this far above the highest peak it lets through


@torch.no_grad()
def negative_peaks(model, clips: Iterable[tuple[np.ndarray, frozenset]], total: int | None = None):
    """Streams `clips` ((16 kHz audio, the keywords it says)) through the model one after another, as
    one stream; per keyword, the peak smoothed posterior of each clip that does not say it (smoothed
    across the clips' boundaries, as the stream it is), and the hours streamed."""
    frontend, state = FrontEnd(model.config.features), model.initial_state()
    keywords, smoothing = model.config.keywords, model.config.smoothing_frames
    peaks = {k: [] for k in keywords}
    samples, before = 0, None
    for audio, said in tqdm(clips, total=total, desc="calibrating on held-back negatives", unit="clip"):
        audio = np.concatenate([audio, PAUSE])
        samples += len(audio)
        features = frontend.accept(audio, SR)
        if features.shape[0] == 0:
            continue
        logits, state = model(features[None], state)
        posteriors = logits.softmax(-1)[0, :, 1:]  # (T, K)
        smoothed = moving_average(posteriors, smoothing, before).amax(0)
        before = posteriors if before is None else torch.cat([before, posteriors])[-smoothing:]
        for keyword, value in zip(keywords, smoothed.tolist()):
            if keyword not in said:
                peaks[keyword].append(value)
    return peaks, samples / SR / 3600


def threshold_letting_through(ranked: list[float], count: int, floor: float) -> float:
    """The lowest threshold that at most `count` of the peaks `ranked` (highest first) reach."""
    return ranked[count] + STEP if len(ranked) > count else floor


def calibrate_thresholds(peaks, hours, target_per_hour, groups=None, floor=0.3, ceiling=0.95):
    """Per keyword, the lowest threshold such that each group of keywords (`groups`: keyword ->
    group; default: every keyword its own group) has at most target_per_hour x hours false alarms on
    the negatives (a clip whose peak reaches a keyword's threshold is one). The group's allowance
    is handed out one false alarm at a time to the keyword whose threshold it lowers most (ties: the
    first keyword); thresholds are then clamped to [floor, ceiling]."""
    groups = groups or {k: k for k in peaks}
    ranked = {k: sorted(values, reverse=True) for k, values in peaks.items()}
    allowed = dict.fromkeys(peaks, 0)
    at = lambda k, count: threshold_letting_through(ranked[k], count, floor)
    for group in dict.fromkeys(groups[k] for k in peaks):
        members = [k for k in peaks if groups[k] == group]
        for _ in range(int(target_per_hour * hours)):
            best = max(members, key=lambda k: at(k, allowed[k]) - at(k, allowed[k] + 1))
            allowed[best] += 1
    return {k: round(min(ceiling, max(floor, at(k, allowed[k]))), 3) for k in peaks}


def false_alarms_per_group(peaks, thresholds, groups) -> dict[str, int]:
    """False alarms of each group on the negatives at `thresholds` (clips whose peak reaches one)."""
    counts = dict.fromkeys(groups.values(), 0)
    for keyword, values in peaks.items():
        counts[groups[keyword]] += sum(value >= thresholds[keyword] for value in values)
    return counts
