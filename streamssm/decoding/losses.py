"""The training losses of ASR models: CTC and the transducer (RNN-T).

The transducer loss is a log-space forward pass over the (T, U+1) lattice, one anti-diagonal
(t + u = n) at a time: every cell of a diagonal depends only on the previous diagonal, so each
step is one vectorised operation over the batch and the diagonal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..tokenizer import BLANK_ID


def ctc_loss(logits, lengths, targets, target_lengths, blank: int = BLANK_ID) -> torch.Tensor:
    """Mean over the batch of -log P(targets | input), each summed over its own frames.

    logits (b, T, V) (log-softmax is taken in float32), lengths (b,) frames per row, targets
    (b, U) padded, target_lengths (b,). An impossible row (too few frames) counts as 0.
    """
    if logits.dim() != 3 or targets.dim() != 2 or targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"need logits (b, T, V) and targets (b, U), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    log_probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(-1).transpose(0, 1)
    total = F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=blank, reduction="sum", zero_infinity=True)
    return total / logits.shape[0]


# stands for log(0) inside the lattice: finite, so that gradients stay finite where -inf gives NaN
LOG_ZERO = -1e30


def _check_loss_inputs(logits, targets, logit_lengths, target_lengths, blank):
    if logits.dim() != 4:
        raise ValueError(f"logits must be (b, T, U+1, V), got shape {tuple(logits.shape)}")
    b, frames, u1, vocab = logits.shape
    if targets.dim() != 2 or targets.shape != (b, u1 - 1):
        raise ValueError(
            f"targets must be (b, U) = ({b}, {u1 - 1}) for logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    if logit_lengths.shape != (b,) or target_lengths.shape != (b,):
        raise ValueError(f"logit_lengths and target_lengths must be ({b},)")
    if b and not (1 <= int(logit_lengths.min()) and int(logit_lengths.max()) <= frames):
        raise ValueError(f"logit_lengths must be in [1, {frames}], got {logit_lengths.tolist()}")
    if b and not (0 <= int(target_lengths.min()) and int(target_lengths.max()) <= u1 - 1):
        raise ValueError(f"target_lengths must be in [0, {u1 - 1}], got {target_lengths.tolist()}")
    real = torch.arange(u1 - 1, device=targets.device) < target_lengths.to(targets.device)[:, None]
    labels = targets[real]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= vocab or bool((labels == blank).any())):
        raise ValueError(f"targets must be ids in [0, {vocab}) other than the blank ({blank})")


def rnnt_loss(logits, targets, logit_lengths, target_lengths, blank: int = BLANK_ID, reduction: str = "mean"):
    """-log P(targets | input), summed over every alignment of the (T, U+1) lattice.

    logits (b, T, U+1, V): joiner outputs, where (t, u) predicts what follows u emitted labels at
    frame t; targets (b, U) padded; logit_lengths (b,) frames and target_lengths (b,) labels per
    row. Log-softmax is taken in float32 (float64 stays float64). reduction: "mean" (over the
    batch), "sum" or "none" (per row).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    _check_loss_inputs(logits, targets, logit_lengths, target_lengths, blank)
    b, frames, u1, _ = logits.shape
    device = logits.device
    logit_lengths, target_lengths = logit_lengths.to(device), target_lengths.to(device)
    log_probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(-1)
    blank_lp = log_probs[..., blank]  # (b, T, U+1)
    labels = targets.clamp(0, log_probs.shape[-1] - 1).to(device)  # padding may hold anything
    emit_lp = log_probs[:, :, :-1].gather(3, labels[:, None, :, None].expand(b, frames, u1 - 1, 1))[..., 0]
    emit_lp = torch.cat([emit_lp, emit_lp.new_full((b, frames, 1), LOG_ZERO)], dim=2)  # nothing follows u = U

    # skewed lattice: diagonal n, position t holds cell (t, u = n - t)
    n_diagonals = frames + u1 - 1
    u = torch.arange(n_diagonals, device=device)[:, None] - torch.arange(frames, device=device)  # (N, T)
    inside = (u >= 0) & (u < u1)
    index = u.clamp(0, u1 - 1).T[None].expand(b, frames, n_diagonals)

    def skew(x):  # (b, T, U+1) -> (b, N, T)
        return x.gather(2, index).transpose(1, 2).masked_fill(~inside, LOG_ZERO)

    blank_d, emit_d = skew(blank_lp), skew(emit_lp)
    last_frame = (logit_lengths - 1)[:, None]
    final_diagonal = logit_lengths - 1 + target_lengths
    alpha = blank_lp.new_full((b, frames), LOG_ZERO)
    alpha[:, 0] = 0.0
    at_end = torch.where(final_diagonal == 0, alpha.gather(1, last_frame)[:, 0], LOG_ZERO)
    for n in range(1, n_diagonals):
        through_blank = alpha + blank_d[:, n - 1]  # (t - 1, u) -> (t, u): shift by one frame
        through_blank = torch.cat([through_blank.new_full((b, 1), LOG_ZERO), through_blank[:, :-1]], dim=1)
        through_label = alpha + emit_d[:, n - 1]  # (t, u - 1) -> (t, u)
        alpha = torch.logaddexp(through_blank, through_label).masked_fill(~inside[n], LOG_ZERO)
        at_end = torch.where(final_diagonal == n, alpha.gather(1, last_frame)[:, 0], at_end)
    final_blank = blank_lp[torch.arange(b, device=device), logit_lengths - 1, target_lengths]
    losses = -(at_end + final_blank)
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses
