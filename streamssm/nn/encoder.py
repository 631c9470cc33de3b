"""Causal Mamba encoder: 4x convolutional subsampling (40 ms frames) and a stack of Mamba-2 blocks.

    y, state = encoder(features)           # (b, 4T, n_mels) -> (b, T, d_model), from a zero state
    y, state = encoder(features, state)    # continue the streams in `state`
    y_t, state = encoder.step(group, state)  # group (b, 4, n_mels) -> (b, d_model)

Features are normalised with fixed statistics stored in the model (never per utterance).
`EncoderState` holds every cache of a batch of streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import JSONConfig
from ..features import SUBSAMPLING
from .ssm import CausalMamba2, Mamba2State, RMSNorm
from .state import BatchedState


@dataclass
class EncoderConfig(JSONConfig):
    n_mels: int = 80
    d_model: int = 256
    n_layers: int = 8
    d_state: int = 64
    headdim: int = 64
    expand: int = 2
    d_conv: int = 4
    subsampling_channels: int = 256
    block_size: int = 64


class EncoderState(BatchedState):
    """Every cache of a batch of encoder streams (dim 0 of each tensor is the stream).

    Its byte size depends only on the model and the batch size, never on how long the streams
    have run. States of single streams can be stacked into a batch and split back, so streams
    of different ages are stepped together (see BatchedState).
    """

    def __init__(self, subsampling: list[torch.Tensor], layers: list[Mamba2State]):
        self.subsampling = list(subsampling)
        self.layers = list(layers)

    def tensors(self) -> list[torch.Tensor]:
        return [*self.subsampling, *(t for layer in self.layers for t in layer)]

    def _rebuild(self, tensors) -> "EncoderState":
        tensors = list(tensors)
        n = len(self.subsampling)
        layers = [Mamba2State(*tensors[n + 2 * i : n + 2 * i + 2]) for i in range(len(self.layers))]
        return EncoderState(tensors[:n], layers)


class CausalSubsampling(nn.Module):
    """Two causal stride-2 convolutions over time: 4 feature frames in, 1 encoder frame out.

    Each conv (kernel 3, stride 2) sees one frame of left context, carried between chunks.
    """

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, channels, kernel_size=3, stride=2)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, stride=2)
        self.proj = nn.Linear(channels, d_model)

    def initial_state(self, batch_size, device, dtype) -> list[torch.Tensor]:
        return [
            torch.zeros(batch_size, self.conv1.in_channels, 1, device=device, dtype=dtype),
            torch.zeros(batch_size, self.conv2.in_channels, 1, device=device, dtype=dtype),
        ]

    def forward(self, x, state, lengths=None):
        """x (b, 4T, n_mels) -> (b, T, d_model); `lengths` in output frames.

        Channels stay last and each conv is one matrix product over its windows: ONNX Runtime's
        Conv took 3x longer on short chunks of many streams (measured); the cached frames keep the
        conv layout (b, channels, 1).
        """
        h, new_state = x, []
        for conv, cache, factor in ((self.conv1, state[0], 4), (self.conv2, state[1], 2)):
            padded = torch.cat([cache.to(h.dtype).transpose(1, 2), h], dim=1)  # (b, 1 + frames, channels)
            last = (padded.shape[1] - 1) if lengths is None else lengths * factor
            new_state.append(_frame_at(padded, last).transpose(1, 2).contiguous())
            windows = padded.unfold(1, conv.kernel_size[0], conv.stride[0]).flatten(
                2
            )  # (b, frames', channels * kernel)
            h = F.silu(F.linear(windows, conv.weight.flatten(1), conv.bias))
        return self.proj(h), new_state


def _frame_at(x, index):
    """x[:, index:index+1], with `index` an int or one index per row."""
    if isinstance(index, int):
        return x[:, index : index + 1]
    return x.gather(1, index.to(x.device)[:, None, None].expand(-1, 1, x.shape[2]))


class MambaBlock(nn.Module):
    """Pre-norm residual block around a CausalMamba2 layer."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = CausalMamba2(
            config.d_model,
            d_state=config.d_state,
            d_conv=config.d_conv,
            expand=config.expand,
            headdim=config.headdim,
            block_size=config.block_size,
        )

    def forward(self, x, state, lengths=None):
        y, state = self.mixer(self.norm(x), state, lengths)
        return x + y, state

    def step(self, x, state):
        y, state = self.mixer.step(self.norm(x), state)
        return x + y, state


class MambaEncoder(nn.Module):
    """Causal subsampling + N Mamba-2 blocks + final norm, exact in whole, chunked and stepped use."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_mels))
        self.register_buffer("feature_std", torch.ones(config.n_mels))
        self.subsampling = CausalSubsampling(config.n_mels, config.subsampling_channels, config.d_model)
        self.blocks = nn.ModuleList(MambaBlock(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model)

    def set_backend(self, backend: str):
        """Force "torch" or "kernels" for every layer, or go back to "auto"."""
        for block in self.blocks:
            block.mixer.backend = backend

    def initial_state(self, batch_size: int = 1, device=None) -> EncoderState:
        weight = self.subsampling.proj.weight
        device, dtype = device or weight.device, weight.dtype
        return EncoderState(
            self.subsampling.initial_state(batch_size, device, dtype),
            [block.mixer.initial_state(batch_size, device, dtype) for block in self.blocks],
        )

    def _normalise(self, features):
        if features.shape[1] % SUBSAMPLING:
            raise ValueError(f"the encoder takes feature frames in groups of {SUBSAMPLING}, got {features.shape[1]}")
        dtype = self.subsampling.proj.weight.dtype
        return ((features.to(self.feature_mean.device, dtype) - self.feature_mean) / self.feature_std).to(dtype)

    def forward(self, features, state: EncoderState | None = None, lengths: torch.Tensor | None = None):
        """features (b, 4T, n_mels) -> (encoded (b, T, d_model), new state).

        `lengths` (b,) counts real encoder frames per row of a padded batch; each row's state is
        taken after its last real frame.
        """
        if state is None:
            state = self.initial_state(features.shape[0], self.feature_mean.device)
        x, sub_state = self.subsampling(self._normalise(features), state.subsampling, lengths)
        layer_states = []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block(x, layer_state, lengths)
            layer_states.append(layer_state)
        return self.norm(x), EncoderState(sub_state, layer_states)

    def step(self, features, state: EncoderState):
        """One encoder frame: features (b, 4, n_mels) -> (encoded (b, d_model), new state)."""
        x, sub_state = self.subsampling(self._normalise(features), state.subsampling)
        x = x[:, 0]
        layer_states = []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block.step(x, layer_state)
            layer_states.append(layer_state)
        return self.norm(x), EncoderState(sub_state, layer_states)
