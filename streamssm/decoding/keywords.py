"""Streaming keyword detector: posterior smoothing, per-keyword thresholds, a refractory period."""

from __future__ import annotations

import re

import numpy as np

from ..events import Event

FRAME_S = 0.04  # encoder frame period


def words_of(text: str) -> str:
    """Lower-case words of `text` joined by single spaces, padded with one: `words_of(k) in
    words_of(t)` tells whether text t says keyword k as whole words."""
    return " " + " ".join(re.findall(r"[a-z']+", text.lower())) + " "


class KeywordDetector:
    """Turns per-frame keyword posteriors of one stream into keyword events.

    Posteriors are averaged over the last `smoothing_frames` frames. When a keyword's smoothed
    posterior reaches its threshold, the detector follows the peak: it keeps the best keyword
    and score seen while any keyword stays above threshold, and reports it once the score has
    not improved for `patience` frames (so a word that starts like another, "three" in
    "thirteen", does not fire before the right one peaks). Nothing fires again for
    `refractory_s` after an event, and a reported keyword fires again only after its smoothed
    posterior has fallen below its threshold, so one utterance (or a long noise the model
    mistakes for a keyword) fires once. It works frame by frame, so its output does not depend on
    how the frames were chunked; its state has a fixed size.
    """

    def __init__(self, keywords, thresholds, smoothing_frames=3, refractory_s=1.0, durations=None,
                 report=None, time_offset=0.0, patience=2):
        self.keywords = list(keywords)
        self.thresholds = np.array([float(thresholds[k]) for k in self.keywords], np.float32)
        self.report = np.array([report is None or k in report for k in self.keywords])
        self.durations = durations or {}
        self.refractory_frames = round(refractory_s / FRAME_S)
        self.patience = patience
        self.time_offset = time_offset  # audio time at the end of frame 0
        self.window = np.zeros((smoothing_frames, len(self.keywords)), np.float32)  # a ring of recent frames
        self.frames_seen = 0
        self.last_fired = -(10**9)
        self.candidate = None  # (keyword index, score, frame) of the peak being followed
        self.armed = np.ones(len(self.keywords), bool)  # a reported keyword re-arms once it falls below threshold

    @property
    def nbytes(self) -> int:
        return self.window.nbytes + self.armed.nbytes + 40

    @property
    def report_delay_s(self) -> float:
        """How long after its peak frame a detection is reported."""
        return self.patience * FRAME_S

    def frame_end_time(self, frame: int) -> float:
        return self.time_offset + frame * FRAME_S

    def accept(self, posteriors) -> list[Event]:
        """posteriors (T, K): per-frame keyword probabilities (filler excluded)."""
        events = []
        size = self.window.shape[0]
        for p in np.asarray(posteriors, np.float32):
            frame, self.frames_seen = self.frames_seen, self.frames_seen + 1
            self.window[frame % size] = p
            smoothed = self.window.sum(0) / min(self.frames_seen, size)
            above = smoothed >= self.thresholds
            self.armed |= ~above
            above &= self.report & self.armed
            if above.any() and frame - self.last_fired >= self.refractory_frames:
                best = int(np.where(above, smoothed, -1.0).argmax())
                if self.candidate is None or smoothed[best] > self.candidate[1]:
                    self.candidate = (best, float(smoothed[best]), frame)
            if self.candidate is not None and frame - self.candidate[2] >= self.patience:
                events.append(self._emit())
        return events

    def flush(self) -> list[Event]:
        """At the end of the stream: report the peak being followed, if any."""
        return [self._emit()] if self.candidate is not None else []

    def _emit(self) -> Event:
        index, score, frame = self.candidate
        self.candidate, self.last_fired = None, frame
        self.armed[index] = False
        keyword, end = self.keywords[index], self.frame_end_time(frame)
        start = max(0.0, end - self.durations.get(keyword, 0.6))
        return Event("keyword", keyword, round(start, 3), round(end, 3), score)
