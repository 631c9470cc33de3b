"""BatchedState: the caches of a batch of streams, as tensors whose dim 0 is the stream.

A subclass names its tensors (`tensors`) and rebuilds itself from a list shaped like them
(`_rebuild`); stacking streams into a batch, splitting it again, picking rows, mixing two states
row by row and moving devices come from here. The byte size depends only on the model and the
batch size, never on how long the streams have run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class BatchedState(ABC):
    @abstractmethod
    def tensors(self) -> list[torch.Tensor]:
        """Every tensor of the state, in a fixed order."""

    @abstractmethod
    def _rebuild(self, tensors) -> "BatchedState":
        """A state like this one holding `tensors` (in the order of `tensors()`)."""

    @property
    def batch_size(self) -> int:
        return self.tensors()[0].shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def to(self, device) -> "BatchedState":
        return self._rebuild(t.to(device) for t in self.tensors())

    def detach(self) -> "BatchedState":
        """The same values, cut from the autograd graph (a state carried to a next training step)."""
        return self._rebuild(t.detach() for t in self.tensors())

    @staticmethod
    def stack(states: list["BatchedState"]) -> "BatchedState":
        """One batched state from states of single streams (or smaller batches)."""
        if not states:
            raise ValueError("stack() needs at least one state")
        if len(states) == 1:  # states are never modified in place: share it
            return states[0]
        columns = zip(*(s.tensors() for s in states))
        return states[0]._rebuild(torch.cat(column, dim=0) for column in columns)

    def unbind(self) -> list["BatchedState"]:
        """The batched state split into one state per stream (each with batch size 1), each a copy:
        a view would keep the whole batch alive for as long as its stream is idle."""
        if self.batch_size == 1:
            return [self]
        return [self._rebuild(row.clone() for row in rows) for rows in zip(*(t.split(1) for t in self.tensors()))]

    def select(self, indices) -> "BatchedState":
        index = torch.as_tensor(indices, device=self.tensors()[0].device)
        return self._rebuild(t.index_select(0, index) for t in self.tensors())

    def where(self, mask: torch.Tensor, other: "BatchedState") -> "BatchedState":
        """Row i from this state where mask[i], else from `other` (same batch size)."""
        return self._rebuild(
            torch.where(mask.to(a.device).view(-1, *(1,) * (a.dim() - 1)), a, b)
            for a, b in zip(self.tensors(), other.tensors())
        )
