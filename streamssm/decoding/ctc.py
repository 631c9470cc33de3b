"""CTC: a streaming greedy search (the loss is in decoding/losses.py).

The greedy search emits a frame's best label when it is not blank and differs from the previous
frame's best label. The previous frame's label is the carried state, so repeats are collapsed
across chunk boundaries exactly as within a chunk.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.state import BatchedState
from ..tokenizer import BLANK_ID
from .search import FrameSearch


class CTCSearchState(BatchedState):
    """The best label of each stream's previous frame (blank at the start), (b,) long."""

    def __init__(self, previous: torch.Tensor):
        self.previous = previous

    def tensors(self) -> list[torch.Tensor]:
        return [self.previous]

    def _rebuild(self, tensors) -> "CTCSearchState":
        return CTCSearchState(*tensors)


class CTCGreedySearch(FrameSearch):
    def __init__(self, head: nn.Module, blank: int = BLANK_ID):
        self.head, self.blank = head, blank

    def initial_state(self, batch_size: int = 1) -> CTCSearchState:
        device = next(self.head.parameters()).device
        return CTCSearchState(torch.full((batch_size,), self.blank, dtype=torch.long, device=device))

    def prepare(self, encoded):
        return self.head(encoded).float().log_softmax(-1)

    def step(self, inputs, state: CTCSearchState, active):
        logprob, best = inputs.max(-1)
        active = active.to(best.device)
        emit = (active & (best != self.blank) & (best != state.previous)).tolist()
        tokens, logprob = best.tolist(), logprob.tolist()
        emitted = [[(tokens[i], logprob[i])] if e else [] for i, e in enumerate(emit)]
        return emitted, CTCSearchState(torch.where(active, best, state.previous))

    def reset(self, state, rows):
        """Unchanged: the previous label describes the audio, not the utterance."""
        return state
