"""Transducer (RNN-T): the loss, the joiner, a streaming greedy search and an offline beam search.

The loss is a log-space forward pass over the (T, U+1) lattice, one anti-diagonal (t + u = n) at
a time: every cell of a diagonal depends only on the previous diagonal, so each step is one
vectorised operation over the batch and the diagonal.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nn.decoder import DecoderState, MambaDecoder
from ..nn.state import BatchedState
from ..tokenizer import BLANK_ID
from .search import FrameSearch

# stands for log(0) inside the lattice: finite, so that gradients stay finite where -inf gives NaN
LOG_ZERO = -1e30


def _check_loss_inputs(logits, targets, logit_lengths, target_lengths, blank):
    if logits.dim() != 4:
        raise ValueError(f"logits must be (b, T, U+1, V), got shape {tuple(logits.shape)}")
    b, frames, u1, vocab = logits.shape
    if targets.dim() != 2 or targets.shape != (b, u1 - 1):
        raise ValueError(
            f"targets must be (b, U) = ({b}, {u1 - 1}) for logits {tuple(logits.shape)}, got {tuple(targets.shape)}")
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


class Joiner(nn.Module):
    """Combines an encoder frame and a decoder output: tanh(W_e enc + W_d dec) -> vocabulary logits."""

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int):
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)

    def joint(self, encoder_projected, decoder_projected):
        """Logits from already projected inputs (broadcast against each other)."""
        return self.output(torch.tanh(encoder_projected + decoder_projected))

    def forward(self, encoded, decoded):
        """encoded (..., encoder_dim) and decoded (..., decoder_dim), broadcast: e.g. (b, T, 1, .)
        and (b, 1, U+1, .) give the lattice (b, T, U+1, V)."""
        return self.joint(self.encoder_proj(encoded), self.decoder_proj(decoded))


class TransducerSearchState(BatchedState):
    """The decoder's state after each stream's emitted tokens, and its projected last output."""

    def __init__(self, decoder: DecoderState, predicted: torch.Tensor):
        self.decoder, self.predicted = decoder, predicted  # predicted: (b, joiner_dim)

    def tensors(self) -> list[torch.Tensor]:
        return [*self.decoder.tensors(), self.predicted]

    def _rebuild(self, tensors) -> "TransducerSearchState":
        tensors = list(tensors)
        return TransducerSearchState(self.decoder._rebuild(tensors[:-1]), tensors[-1])


def _advance(decoder: MambaDecoder, joiner: Joiner, tokens, state: DecoderState) -> TransducerSearchState:
    out, state = decoder.step(tokens, state)
    return TransducerSearchState(state, joiner.decoder_proj(out))


def start_state(decoder: MambaDecoder, joiner: Joiner, batch_size: int, blank: int = BLANK_ID):
    """Fresh hypotheses: the decoder has read the start symbol (the blank)."""
    device = decoder.embedding.weight.device
    blanks = torch.full((batch_size,), blank, dtype=torch.long, device=device)
    return _advance(decoder, joiner, blanks, decoder.initial_state(batch_size))


def best_token(joiner: Joiner, encoder_projected, decoder_projected):
    """(log-probability, id) of the most likely next token of each row."""
    return joiner.joint(encoder_projected, decoder_projected).float().log_softmax(-1).max(-1)


class TransducerNet:
    """The networks as the greedy search calls them, here the PyTorch modules (the ONNX backend
    gives the search its own: runtime.onnx_backend.OnnxTransducerNet)."""

    def __init__(self, decoder: MambaDecoder, joiner: Joiner):
        self.decoder, self.joiner = decoder, joiner

    def start(self, batch_size: int, blank: int) -> TransducerSearchState:
        return start_state(self.decoder, self.joiner, batch_size, blank)

    def advance(self, tokens, state: DecoderState) -> TransducerSearchState:
        return _advance(self.decoder, self.joiner, tokens, state)

    def best(self, encoder_projected, decoder_projected):
        return best_token(self.joiner, encoder_projected, decoder_projected)


class GreedyTransducerSearch(FrameSearch):
    """Per frame: emit the best non-blank token and step the decoder, until blank or
    `max_symbols_per_frame` tokens; then the next frame. `net` runs the decoder and joiner."""

    def __init__(self, decoder: MambaDecoder, joiner: Joiner, blank: int = BLANK_ID, max_symbols_per_frame: int = 3):
        if max_symbols_per_frame < 1:
            raise ValueError(f"max_symbols_per_frame must be >= 1, got {max_symbols_per_frame}")
        self.decoder, self.joiner, self.blank = decoder, joiner, blank
        self.max_symbols_per_frame = max_symbols_per_frame
        self.net = TransducerNet(decoder, joiner)

    def initial_state(self, batch_size: int = 1) -> TransducerSearchState:
        return self.net.start(batch_size, self.blank)

    def prepare(self, encoded):
        return self.joiner.encoder_proj(encoded)

    def step(self, inputs, state: TransducerSearchState, active):
        emitted = [[] for _ in range(inputs.shape[0])]
        emitting = active.to(inputs.device)
        for _ in range(self.max_symbols_per_frame):
            logprob, best = self.net.best(inputs, state.predicted)
            emitting = emitting & (best != self.blank)
            rows = emitting.nonzero()[:, 0].tolist()
            if not rows:
                break
            state = self.net.advance(best, state.decoder).where(emitting, state)
            tokens, logprob = best.tolist(), logprob.tolist()
            for i in rows:
                emitted[i].append((tokens[i], logprob[i]))
        return emitted, state

    def reset(self, state, rows):
        mask = torch.zeros(state.batch_size, dtype=torch.bool, device=state.predicted.device)
        mask[rows] = True
        return self.initial_state(state.batch_size).where(mask, state)


def _logaddexp(a: float, b: float) -> float:
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


@torch.no_grad()
def beam_search(decoder: MambaDecoder, joiner: Joiner, encoded: torch.Tensor, beam: int = 4, blank: int = BLANK_ID):
    """Offline beam search over one utterance's encoder output (T, d), at most one token per frame.

    Each frame extends every hypothesis by blank or by one token; the `beam` best extensions are
    kept, and extensions with the same tokens are merged (their probabilities added). Returns the
    best hypothesis as [(token, frame, log-probability)] and its total log-probability. Memory is
    `beam` decoder states plus the hypotheses' tokens.
    """
    if encoded.dim() != 2:
        raise ValueError(f"beam_search takes one utterance's encoder output (T, d), got shape {tuple(encoded.shape)}")
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    inputs = joiner.encoder_proj(encoded)
    hypotheses, scores = [((), ())], [0.0]  # (tokens, emissions) and log-probabilities
    state = start_state(decoder, joiner, 1, blank)
    for t in range(inputs.shape[0]):
        logprobs = joiner.joint(inputs[t], state.predicted).double().log_softmax(-1)  # (k, V)
        vocab = logprobs.shape[1]
        candidates = (torch.tensor(scores, dtype=torch.float64, device=logprobs.device)[:, None] + logprobs).flatten()
        top_scores, top = candidates.topk(min(beam, candidates.numel()))
        merged, kept, new_hypotheses, new_scores = {}, [], [], []
        for score, flat in zip(top_scores.tolist(), top.tolist()):
            parent, token = divmod(flat, vocab)
            tokens, emissions = hypotheses[parent]
            if token != blank:
                lp = float(logprobs[parent, token])
                tokens, emissions = tokens + (token,), emissions + ((token, t, lp),)
            if tokens in merged:
                j = merged[tokens]
                new_scores[j] = _logaddexp(new_scores[j], score)
                continue
            merged[tokens] = len(new_hypotheses)
            new_hypotheses.append((tokens, emissions))
            new_scores.append(score)
            kept.append((parent, token))
        parents = torch.tensor([p for p, _ in kept], device=logprobs.device)
        tokens = torch.tensor([v for _, v in kept], device=logprobs.device)
        state = state.select(parents)
        emitting = tokens != blank
        if bool(emitting.any()):
            state = _advance(decoder, joiner, tokens, state.decoder).where(emitting, state)
        hypotheses, scores = new_hypotheses, new_scores
    best = max(range(len(scores)), key=scores.__getitem__)
    return list(hypotheses[best][1]), scores[best]
