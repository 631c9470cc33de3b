"""Keyword events from a KWS model: `KeywordDecoding` (per recognizer) gives each stream a
`KeywordDetector` (posterior smoothing, per-keyword thresholds, a refractory period)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..events import Event


def moving_average(posteriors: torch.Tensor, frames: int, before: torch.Tensor | None = None) -> torch.Tensor:
    """The keyword posteriors' smoothing, shared by the detector, the training loss and threshold
    calibration: each frame of `posteriors` (..., T, K) averaged with the up to `frames` - 1 frames
    before it in its stream, which are the last rows of `before` (..., n, K) and then `posteriors`'
    own (fewer at the start of a stream). Causal, differentiable, the same however a stream is cut."""
    if before is None:
        before = posteriors[..., :0, :]
    known = min(before.shape[-2], frames - 1)
    before = before[..., before.shape[-2] - known :, :]
    rows = F.pad(torch.cat([before, posteriors], -2), (0, 0, frames - 1 - known, 0))
    counts = (torch.arange(posteriors.shape[-2], device=posteriors.device) + known + 1).clamp(max=frames)
    return rows.unfold(-2, frames, 1).sum(-1) / counts[:, None]


class KeywordDetector:
    """Turns per-frame keyword posteriors of one stream into keyword events.

    Posteriors are averaged over the last `smoothing_frames` frames. When a keyword's smoothed
    posterior reaches its threshold, the detector follows the peak: it keeps the best keyword
    and score seen while any keyword stays above threshold, and reports it once the score has
    not improved for `patience` frames (so a word that starts like another, "three" in
    "thirteen", does not fire before the right one peaks). Nothing fires again for
    `refractory_s` after an event, and a reported keyword fires again only after its smoothed
    posterior has fallen below its threshold and `repeat_s` has passed since its report, so one
    utterance (or a long noise the model mistakes for a keyword) fires once, and a model whose
    posterior rises again a second after the keyword does not repeat it. It works frame by frame,
    so its output does not depend on how the frames were chunked; its state has a fixed size.
    """

    def __init__(
        self,
        keywords,
        thresholds,
        frame_s: float,
        *,
        refractory_s: float,
        repeat_s: float,
        smoothing_frames=3,
        durations=None,
        report=None,
        time_offset=0.0,
        patience=2,
    ):
        self.keywords = list(keywords)
        self.thresholds = np.array([float(thresholds[k]) for k in self.keywords], np.float32)
        self.report = np.array([report is None or k in report for k in self.keywords])
        self.durations = durations or {}
        self.frame_s = frame_s  # encoder frame period
        self.refractory_frames = round(refractory_s / frame_s)
        self.repeat_frames = round(repeat_s / frame_s)
        self.patience = patience
        self.time_offset = time_offset  # audio time at the end of frame 0
        self.smoothing_frames = smoothing_frames
        self.recent = np.zeros((smoothing_frames - 1, len(self.keywords)), np.float32)  # the last frames, newest last
        self.frames_seen = 0
        self.last_fired = -(10**9)
        self.candidate = None  # (keyword index, score, frame) of the peak being followed
        self.armed = np.ones(len(self.keywords), bool)  # a reported keyword re-arms once it falls below threshold
        self.last_reported = np.full(len(self.keywords), -(10**9))  # frame of each keyword's last report

    @property
    def nbytes(self) -> int:
        return self.recent.nbytes + self.armed.nbytes + self.last_reported.nbytes + 40

    @property
    def report_delay_s(self) -> float:
        """How long after its peak frame a detection is reported."""
        return self.patience * self.frame_s

    def frame_end_time(self, frame: int) -> float:
        return self.time_offset + frame * self.frame_s

    def smooth(self, posteriors: np.ndarray) -> np.ndarray:
        """`moving_average` of posteriors (T, K) after the frames this stream has seen, in numpy (a
        stream's chunks are small: torch's per-call cost was half of `accept`'s); the stream moves on
        by those frames."""
        frames, known = len(posteriors), min(self.frames_seen, len(self.recent))
        padding = np.zeros((len(self.recent) - known, posteriors.shape[1]), np.float32)
        rows = np.concatenate([padding, self.recent[len(self.recent) - known :], posteriors])
        counts = np.minimum(np.arange(frames) + known + 1, self.smoothing_frames).astype(np.float32)
        smoothed = sum(rows[i : i + frames] for i in range(self.smoothing_frames)) / counts[:, None]
        if len(self.recent):
            self.recent[:] = rows[-len(self.recent) :]
        self.frames_seen += frames
        return smoothed

    def accept(self, posteriors) -> list[Event]:
        """posteriors (T, K): per-frame keyword probabilities (filler excluded)."""
        events, posteriors = [], np.asarray(posteriors, np.float32)
        if not len(posteriors):
            return events
        first = self.frames_seen
        smoothed_frames = self.smooth(posteriors)
        above_frames = smoothed_frames >= self.thresholds
        if self.candidate is None and not (above_frames & self.report).any():  # nothing to follow
            self.armed |= ~above_frames.all(0)
            return events
        for frame, (smoothed, above) in enumerate(zip(smoothed_frames, above_frames), first):
            self.armed |= ~above
            above &= self.report & self.armed & (frame - self.last_reported >= self.repeat_frames)
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
        self.armed[index], self.last_reported[index] = False, frame
        keyword, end = self.keywords[index], self.frame_end_time(frame)
        start = max(0.0, end - self.durations.get(keyword, 0.6))
        return Event("keyword", keyword, round(start, 3), round(end, 3), score)


def with_thresholds(defaults: dict[str, float], keywords: list[str], thresholds) -> dict[str, float]:
    """`defaults` (keyword -> threshold) with `thresholds` over them: one value for all of
    `keywords`, or a dict per keyword of `defaults`; ValueError for another keyword or a value
    outside (0, 1]."""
    merged = dict(defaults)
    if isinstance(thresholds, (int, float)):
        thresholds = dict.fromkeys(keywords, thresholds)
    for keyword, value in (thresholds or {}).items():
        if keyword not in merged:
            raise ValueError(f"threshold for unknown keyword {keyword!r}")
        if not 0.0 < float(value) <= 1.0:
            raise ValueError(f"threshold for {keyword!r} must be in (0, 1], got {value}")
        merged[keyword] = float(value)
    return merged


class KeywordDecoding:
    """Keyword events from a KWS model: per-frame posteriors through a KeywordDetector per stream.

    keywords: report only these (default: all the model knows); thresholds: one value for all
    keywords or a dict per keyword, each in (0, 1] (default: the model's calibrated ones).
    """

    # silence the model hears before a stream starts and after it ends: the model decides up to
    # this late after a keyword, and it was evaluated (and its thresholds set) with this around clips
    edge_silence_s = 0.5

    def __init__(self, model, keywords: list[str] | None = None, thresholds: float | dict[str, float] | None = None):
        self.model, config = model, model.config
        unknown = set(keywords or ()) - set(config.keywords)
        if unknown:
            raise ValueError(f"unknown keywords {sorted(unknown)}; this model knows {config.keywords}")
        self.keywords = list(keywords) if keywords else list(config.keywords)
        defaults = {k: config.thresholds.get(k, config.default_threshold) for k in config.keywords}
        self.thresholds = with_thresholds(defaults, self.keywords, thresholds)

    def new_stream(self) -> KeywordDetector:
        config = self.model.config
        return KeywordDetector(
            config.keywords,
            self.thresholds,
            config.features.frame_s,
            refractory_s=config.refractory_s,
            repeat_s=config.repeat_s,
            smoothing_frames=config.smoothing_frames,
            durations=config.keyword_durations,
            report=set(self.keywords),
            time_offset=config.features.frame_span_s,
        )

    head = "logits"  # the chunk function's output that `decode` takes (runtime.graphs.heads)

    @property
    def report_delay_s(self) -> float:
        """How long after its peak frame a detection is reported."""
        return self.new_stream().report_delay_s

    def tracks(self, logits) -> torch.Tensor:
        """The keyword posteriors (..., T, K) of logits (..., T, K + 1): what a detector takes."""
        return logits.float().softmax(-1)[..., 1:].cpu()

    def decode(self, logits, lengths, detectors: list[KeywordDetector]) -> list[list[Event]]:
        posteriors = self.tracks(logits)
        return [detector.accept(posteriors[i, :n]) for i, (detector, n) in enumerate(zip(detectors, lengths.tolist()))]

    def detect(self, posteriors, thresholds) -> list[Event]:
        """The events of a whole stream's `tracks` with other thresholds (an evaluation's sweep)."""
        detector = KeywordDecoding(self.model, self.keywords, thresholds).new_stream()
        return detector.accept(posteriors) + detector.flush()

    def flush(self, detector: KeywordDetector) -> list[Event]:
        return detector.flush()
