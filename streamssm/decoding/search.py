"""The interface shared by the frame-synchronous searches (CTC greedy, transducer greedy).

A search consumes encoder frames one at a time for a batch of streams and carries a fixed-size
`BatchedState` per stream, so a stream can be searched chunk by chunk (or batched with others,
or cut at an endpoint between two frames) with the same result as in one pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..nn.state import BatchedState

Emission = tuple[int, float]  # (token id, its log-probability)


class FrameSearch(ABC):
    """Subclasses implement initial_state, prepare, step and reset; `run` searches a whole chunk."""

    @abstractmethod
    def initial_state(self, batch_size: int = 1) -> BatchedState:
        """The state of `batch_size` fresh streams."""

    @abstractmethod
    def prepare(self, encoded: torch.Tensor) -> torch.Tensor:
        """Per-frame inputs of `step` from encoder output (b, T, d): (b, T, ...)."""

    @abstractmethod
    def step(
        self, inputs: torch.Tensor, state: BatchedState, active: torch.Tensor
    ) -> tuple[list[list[Emission]], BatchedState]:
        """One frame of every stream -> (tokens emitted per stream, new state).

        Streams where `active` (b,) is False emit nothing and keep their state.
        """

    @abstractmethod
    def reset(self, state: BatchedState, rows: list[int]) -> BatchedState:
        """The state with `rows` starting a new utterance (after an endpoint)."""

    @torch.no_grad()
    def run(self, encoded: torch.Tensor, state: BatchedState | None = None, lengths: torch.Tensor | None = None):
        """Search encoder output (b, T, d) from `state` (fresh streams if None); `lengths` (b,) in frames.

        Returns, per stream, [(token, frame, log-probability)] with frames counted from this chunk's
        start, and the state after each stream's last frame.
        """
        b, frames = encoded.shape[:2]
        state = self.initial_state(b) if state is None else state
        lengths = torch.full((b,), frames) if lengths is None else lengths.cpu()
        inputs, found = self.prepare(encoded), [[] for _ in range(b)]
        for t in range(frames):
            emitted, state = self.step(inputs[:, t], state, t < lengths)
            for row, tokens in zip(found, emitted):
                row.extend((token, t, logprob) for token, logprob in tokens)
        return found, state
