"""Transducer (RNN-T) searches: a streaming greedy search and an offline beam search (the joiner
is in nn/joiner.py, the loss in decoding/losses.py)."""

from __future__ import annotations

import math

import torch

from ..nn.decoder import DecoderState, MambaDecoder
from ..nn.joiner import Joiner
from ..nn.state import BatchedState
from ..tokenizer import BLANK_ID
from .search import FrameSearch


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
