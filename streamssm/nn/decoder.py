"""Mamba prediction network of the transducer: token embedding + a stack of Mamba-2 blocks.

    out, state = decoder(tokens)             # (b, L) -> (b, L, d_model), e.g. labels after a blank
    out_t, state = decoder.step(token, state)  # (b,) -> (b, d_model): one emitted token

The blank id doubles as the start symbol. Stepping costs the same at every token and the state
has a fixed size, so decoding an utterance of any length runs in constant memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import JSONConfig
from .encoder import MambaBlock
from .ssm import Mamba2State, RMSNorm
from .state import BatchedState


@dataclass
class DecoderConfig(JSONConfig):
    """Sizes of the prediction network (the fields MambaBlock reads, as in EncoderConfig)."""

    d_model: int = 256
    n_layers: int = 2
    d_state: int = 32
    headdim: int = 32
    expand: int = 2
    d_conv: int = 4
    block_size: int = 64


class DecoderState(BatchedState):
    """The per-layer caches of a batch of decoder streams (dim 0 is the stream)."""

    def __init__(self, layers: list[Mamba2State]):
        self.layers = list(layers)

    def tensors(self) -> list[torch.Tensor]:
        return [t for layer in self.layers for t in layer]

    def _rebuild(self, tensors) -> "DecoderState":
        tensors = list(tensors)
        return DecoderState([Mamba2State(*tensors[i : i + 2]) for i in range(0, len(tensors), 2)])


class MambaDecoder(nn.Module):
    def __init__(self, config: DecoderConfig, vocab_size: int):
        super().__init__()
        self.config, self.vocab_size = config, vocab_size
        self.embedding = nn.Embedding(vocab_size, config.d_model)
        self.blocks = nn.ModuleList(MambaBlock(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model)

    def set_backend(self, backend: str):
        """Force "torch" or "kernels" for every layer, or go back to "auto"."""
        for block in self.blocks:
            block.mixer.backend = backend

    def initial_state(self, batch_size: int = 1, device=None) -> DecoderState:
        weight = self.embedding.weight
        device = device or weight.device
        return DecoderState([block.mixer.initial_state(batch_size, device, weight.dtype) for block in self.blocks])

    def _check(self, tokens):
        if torch.compiler.is_exporting():  # the values are not known while a graph is traced
            return
        if tokens.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"tokens must be an integer tensor, got {tokens.dtype}")
        if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < self.vocab_size:
            raise ValueError(
                f"token ids must be in [0, {self.vocab_size}), got {int(tokens.min())}..{int(tokens.max())}"
            )

    def forward(self, tokens: torch.Tensor, state: DecoderState | None = None):
        """tokens (b, L) -> (outputs (b, L, d_model), state after the last token)."""
        self._check(tokens)
        if state is None:
            state = self.initial_state(tokens.shape[0])
        x, layers = self.embedding(tokens), []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block(x, layer_state)
            layers.append(layer_state)
        return self.norm(x), DecoderState(layers)

    def step(self, tokens: torch.Tensor, state: DecoderState):
        """tokens (b,) -> (outputs (b, d_model), new state)."""
        self._check(tokens)
        x, layers = self.embedding(tokens), []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block.step(x, layer_state)
            layers.append(layer_state)
        return self.norm(x), DecoderState(layers)
