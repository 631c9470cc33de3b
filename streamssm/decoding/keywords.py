"""Streaming keyword detector: posterior smoothing, per-keyword thresholds, a refractory period."""

from __future__ import annotations

import torch

from ..events import Event

FRAME_S = 0.04  # encoder frame period


class KeywordDetector:
    """Turns per-frame keyword posteriors of one stream into keyword events.

    Posteriors are averaged over the last `smoothing_frames` frames; a keyword fires on the frame
    its smoothed posterior first reaches its threshold (the best keyword wins when several do),
    and nothing fires again for `refractory_s`, so one utterance fires once. It works frame by
    frame, so its output does not depend on how the frames were chunked. Its state is fixed-size.
    """

    def __init__(self, keywords, thresholds, smoothing_frames=3, refractory_s=1.0, durations=None,
                 report=None, time_offset=0.0):
        self.keywords = list(keywords)
        self.thresholds = torch.tensor([float(thresholds[k]) for k in self.keywords])
        self.report = torch.tensor([report is None or k in report for k in self.keywords])
        self.durations = durations or {}
        self.refractory_frames = round(refractory_s / FRAME_S)
        self.time_offset = time_offset  # audio time at the end of frame 0
        self.window = torch.zeros(smoothing_frames, len(self.keywords))
        self.frames_seen = 0
        self.last_fired = -(10**9)

    @property
    def nbytes(self) -> int:
        return self.window.numel() * self.window.element_size() + 16

    def frame_end_time(self, frame: int) -> float:
        return self.time_offset + frame * FRAME_S

    def accept(self, posteriors: torch.Tensor) -> list[Event]:
        """posteriors (T, K): per-frame keyword probabilities (filler excluded)."""
        events = []
        for p in posteriors.float():
            self.window = torch.roll(self.window, 1, dims=0)
            self.window[0] = p
            frame, self.frames_seen = self.frames_seen, self.frames_seen + 1
            filled = min(self.frames_seen, self.window.shape[0])
            smoothed = self.window[:filled].mean(0)
            firing = (smoothed >= self.thresholds) & self.report
            if firing.any() and frame - self.last_fired >= self.refractory_frames:
                best = int(torch.where(firing, smoothed, -1.0).argmax())
                keyword, end = self.keywords[best], self.frame_end_time(frame)
                start = max(0.0, end - self.durations.get(keyword, 0.6))
                events.append(Event("keyword", keyword, round(start, 3), round(end, 3), float(smoothed[best])))
                self.last_fired = frame
        return events
