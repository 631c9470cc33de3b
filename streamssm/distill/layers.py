"""Layer-wise hidden-state distillation (MOHAWK's alignment): each hidden state of the student
(after the stem, after each block, after the final norm) at frame t predicts the teacher's at
t - delay, the teacher's states computed on the fly from the same (augmented) features.

    targets = LayerTargets("whisper-tiny.en")
    teacher_states, has_target = targets(features, feature_lengths)
    loss = layer_distillation_loss(student_states, teacher_states, has_target, delay)

The teacher and the student must share the frame geometry and width: a student built by
streamssm/distill/transfer.py. The loss per frame is the squared error relative to the teacher
state's squared norm (Whisper's residual stream has a few very large dimensions), summed over a
row's frames, averaged over the rows and the layers: the scale of the CTC and transducer losses.
"""

from __future__ import annotations

import torch

from ..features import SUBSAMPLING, encoder_frames
from .transfer import WhisperEncoder, whisper_input, whisper_tensors


class LayerTargets:
    """A Whisper teacher's hidden states at 40 ms for a training batch, one utterance at a time
    (on its own frames: no padding reaches the attention)."""

    def __init__(self, teacher: str = "whisper-tiny.en", device="cpu"):
        self.device = torch.device(device)
        self.teacher = WhisperEncoder(whisper_tensors(teacher)).to(self.device)

    def __call__(self, features, feature_lengths) -> tuple[list[torch.Tensor], torch.Tensor]:
        """features (b, F, 80) padded, feature_lengths (b,) -> (per teacher state (b, T, d),
        has_target (b, T) bool) on the teacher's device, T the student's frames of the longest row."""
        rows, length = features.shape[0], int(encoder_frames(feature_lengths).max())
        features = features.to(self.device)
        states, has_target = None, torch.zeros(rows, length, dtype=torch.bool, device=self.device)
        for row in range(rows):
            real = int(feature_lengths[row])
            hidden = self.teacher(whisper_input(features[row : row + 1, :real]))
            if states is None:
                states = [torch.zeros(rows, length, h.shape[-1], device=self.device) for h in hidden]
            count = min(hidden[0].shape[1], length)
            for target, h in zip(states, hidden):
                target[row, :count] = h[0, :count]
            has_target[row, :count] = True
        return states, has_target


def layer_distillation_loss(student, teacher, has_target, delay: int) -> torch.Tensor:
    """student, teacher: lists of (b, T, d) states, layer by layer; has_target (b, T) marks the
    teacher frames that exist. Student frame t is compared with teacher frame t - delay."""
    if len(student) != len(teacher):
        raise ValueError(f"the student has {len(student)} hidden states, the teacher {len(teacher)}")
    length = student[0].shape[1] - delay
    if length <= 0:
        return sum(s.sum() for s in student) * 0.0
    used = has_target[:, :length].to(student[0].device)
    total = 0.0
    for s, t in zip(student, teacher):
        wanted = t[:, :length].to(s.device)
        error = (s[:, delay:].float() - wanted).square().sum(-1) / wanted.square().sum(-1).clamp(min=1e-6)
        total = total + (error * used).sum() / s.shape[0]
    return total / len(student)


@torch.no_grad()
def alignment_errors(encoder, targets: LayerTargets, clips, delay: int) -> list[float]:
    """Per hidden state (stem, each block, final norm), the student's squared error relative to the
    teacher's state, averaged over every frame of `clips` (a list of (features (F, 80)) tensors)."""
    sums, frames = None, 0
    for features in clips:
        lengths = torch.tensor([features.shape[0]])
        count = encoder_frames(lengths)
        padded = torch.nn.functional.pad(features, (0, 0, 0, int(count) * SUBSAMPLING - features.shape[0]))[None]
        encoded, _, hidden = encoder.forward_hidden(padded)
        states, has_target = targets(padded, lengths)
        used = int(has_target[0, : max(0, int(count) - delay)].sum())
        errors = [
            float(layer_distillation_loss([s], [t], has_target, delay)) for s, t in zip([*hidden, encoded], states)
        ]
        sums = errors if sums is None else [a + b for a, b in zip(sums, errors)]
        frames += used
    return [value / max(frames, 1) for value in sums]
