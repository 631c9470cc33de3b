"""Frame-level distillation: the causal student's encoder frame t predicts the teacher's frame t - delay.

The teacher (a bidirectional Whisper encoder) has seen the whole clip; the student has seen only
the past, so it is asked for the teacher's view of a moment `delay` frames (40 ms each) back.
A linear head maps the student's frames to the teacher's width; the loss is the cosine distance
summed over each utterance's frames and averaged over the utterances that have a target (the
scale of the CTC and transducer losses, which are per-utterance sums too). The head is used in training only and is not part
of a saved model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def fit_frames(frames: np.ndarray, count: int) -> torch.Tensor:
    """A teacher's (T, d) frames stretched (linear interpolation) to `count` frames: the student's
    frame count of the same clip, after any speed perturbation."""
    tensor = torch.from_numpy(np.asarray(frames, np.float32))
    if tensor.shape[0] == count:
        return tensor
    return F.interpolate(tensor.T[None], size=count, mode="linear", align_corners=True)[0].T


def batch_targets(frames: list[np.ndarray | None], counts: list[int], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets (b, T, dim) zero-padded, has_target (b,) bool) for a batch; None: no teacher for that clip."""
    targets = torch.zeros(len(counts), max(counts), dim)
    for row, (clip, count) in enumerate(zip(frames, counts)):
        if clip is not None:
            targets[row, :count] = fit_frames(clip, count)
    return targets, torch.tensor([clip is not None for clip in frames])


class FrameDistillation(nn.Module):
    def __init__(self, student_dim: int, teacher_dim: int, delay: int):
        super().__init__()
        if delay < 0:
            raise ValueError(f"delay must be >= 0 frames, got {delay}")
        self.delay = delay
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, encoded, frames, targets, has_target):
        """Cosine distance between proj(encoded[:, t]) and targets[:, t - delay], summed over the real
        frames (t < frames[row]) of a row and averaged over the rows that have a target; 0 when none has."""
        length = encoded.shape[1] - self.delay
        if length <= 0 or not bool(has_target.any()):
            return self.proj(encoded.float()).sum() * 0.0  # through the head: every parameter takes part (DDP)
        predicted = self.proj(encoded[:, self.delay :].float())
        wanted = targets[:, :length].to(predicted.device)
        t = torch.arange(self.delay, encoded.shape[1], device=predicted.device)
        used = (t[None] < frames.to(predicted.device)[:, None]) & has_target.to(predicted.device)[:, None]
        distance = 1.0 - F.cosine_similarity(predicted, wanted, dim=-1)
        return (distance * used).sum() / has_target.sum()
