"""Causal Mamba encoder: 4x convolutional subsampling (40 ms frames) and a stack of Mamba-2 blocks.

    y, state = encoder(features)           # (b, 4T, n_mels) -> (b, T, d_model), from a zero state
    y, state = encoder(features, state)    # continue the streams in `state`
    y_t, state = encoder.step(group, state)  # group (b, 4, n_mels) -> (b, d_model)

Features are normalised with fixed statistics stored in the model (never per utterance).
`EncoderState` holds every cache of a batch of streams.

The default stem is two stride-2 convolutions; `stem="whisper"` is Whisper's (a stride-1 and a
stride-2 convolution with GELU, made causal) followed by averaging frame pairs, and with
`mlp_ratio`, `norm="layer"` and `ngroups` a block has Whisper's shape (attention replaced by the
Mamba-2 mixer): the student that streamssm/distill/transfer.py initialises from a Whisper encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import JSONConfig
from ..features import SUBSAMPLING
from .ssm import CausalMamba2, Mamba2State, RMSNorm, frames_at
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
    ngroups: int = 1  # B/C groups of the mixer
    mlp_ratio: int = 0  # > 0: an MLP of mlp_ratio * d_model after each mixer
    norm: str = "rms"  # or "layer" (LayerNorm with bias)
    stem: str = "conv4"  # or "whisper"

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"EncoderConfig.norm must be one of {sorted(NORMS)}, got {self.norm!r}")
        if self.stem not in STEMS:
            raise ValueError(f"EncoderConfig.stem must be one of {sorted(STEMS)}, got {self.stem!r}")


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


def causal_conv(h, cache, conv: nn.Conv1d, activation, real_frames=None):
    """A causal conv over channels-last frames h (b, T, c) whose left context, the last
    kernel - stride input frames, is carried in `cache` (b, c, kernel - stride).

    Returns (activation(conv) (b, T / stride, out), the new cache: the last frames of each row's
    `real_frames` (default all T)). Each conv is one matrix product over its windows: ONNX Runtime's
    Conv took 3x longer on short chunks of many streams (measured); the cache keeps the conv layout.
    """
    padded = torch.cat([cache.to(h.dtype).transpose(1, 2), h], dim=1)  # (b, context + T, c)
    context = cache.shape[2]
    end = h.shape[1] if real_frames is None else real_frames
    new_cache = frames_at(padded, end, context).transpose(1, 2).contiguous()
    windows = padded.unfold(1, conv.kernel_size[0], conv.stride[0]).flatten(2)  # (b, T', c * kernel)
    return activation(F.linear(windows, conv.weight.flatten(1), conv.bias)), new_cache


class TwoConvStem(nn.Module):
    """Two causal convolutions over time (`conv1`, `conv2` of the subclass) from 4 feature frames
    per encoder frame; each carries its left context (kernel - stride frames) between chunks."""

    activation = staticmethod(F.silu)

    def initial_state(self, batch_size, device, dtype) -> list[torch.Tensor]:
        return [
            torch.zeros(batch_size, conv.in_channels, conv.kernel_size[0] - conv.stride[0], device=device, dtype=dtype)
            for conv in (self.conv1, self.conv2)
        ]

    def convolve(self, x, state, lengths=None):
        """x (b, 4T, n_mels) -> (conv2's frames, new state); `lengths` in encoder frames."""
        between = SUBSAMPLING // self.conv1.stride[0]  # conv1 outputs per encoder frame
        real = (None, None) if lengths is None else (lengths * SUBSAMPLING, lengths * between)
        h, cache1 = causal_conv(x, state[0], self.conv1, self.activation, real[0])
        h, cache2 = causal_conv(h, state[1], self.conv2, self.activation, real[1])
        return h, [cache1, cache2]


class CausalSubsampling(TwoConvStem):
    """Two causal stride-2 convolutions over time: 4 feature frames in, 1 encoder frame out.

    Each conv (kernel 3, stride 2) sees one frame of left context, carried between chunks.
    """

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, channels, kernel_size=3, stride=2)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, stride=2)
        self.proj = nn.Linear(channels, d_model)

    def forward(self, x, state, lengths=None):
        """x (b, 4T, n_mels) -> (b, T, d_model); `lengths` in output frames."""
        h, state = self.convolve(x, state, lengths)
        return self.proj(h), state


class WhisperStem(TwoConvStem):
    """Whisper's convolution stem made causal, then the mean of each pair of its 20 ms frames.

    conv1 (kernel 3, stride 1) sees two earlier frames instead of one on each side; conv2 (kernel 3,
    stride 2) one earlier frame, as in Whisper; GELU after each. `offset` is added to every output
    frame: a transferred student starts it at the mean of Whisper's positional embeddings, which a
    stream of unbounded length cannot use.
    """

    activation = staticmethod(F.gelu)

    def __init__(self, n_mels: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d_model, kernel_size=3, stride=1)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size=3, stride=2)
        self.offset = nn.Parameter(torch.zeros(d_model))

    def forward(self, x, state, lengths=None):
        """x (b, 4T, n_mels) -> (b, T, d_model); `lengths` in output frames."""
        h, state = self.convolve(x, state, lengths)
        return h.unflatten(1, (-1, 2)).mean(2) + self.offset, state


STEMS = {
    "conv4": lambda c: CausalSubsampling(c.n_mels, c.subsampling_channels, c.d_model),
    "whisper": lambda c: WhisperStem(c.n_mels, c.d_model),
}
NORMS = {"rms": RMSNorm, "layer": nn.LayerNorm}


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_model, hidden), nn.Linear(hidden, d_model)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class MambaBlock(nn.Module):
    """Pre-norm residual block around a CausalMamba2 layer, and around an MLP when mlp_ratio > 0.
    The sizes come from `config` (an EncoderConfig or DecoderConfig)."""

    def __init__(self, config, ngroups: int = 1, mlp_ratio: int = 0, norm: str = "rms"):
        super().__init__()
        self.norm = NORMS[norm](config.d_model)
        self.mixer = CausalMamba2(
            config.d_model,
            d_state=config.d_state,
            d_conv=config.d_conv,
            expand=config.expand,
            headdim=config.headdim,
            block_size=config.block_size,
            ngroups=ngroups,
        )
        if mlp_ratio:
            self.mlp_norm = NORMS[norm](config.d_model)
            self.mlp = MLP(config.d_model, mlp_ratio * config.d_model)

    def _with_mlp(self, x):
        return x + self.mlp(self.mlp_norm(x)) if hasattr(self, "mlp") else x

    def forward(self, x, state, lengths=None):
        y, state = self.mixer(self.norm(x), state, lengths)
        return self._with_mlp(x + y), state

    def step(self, x, state):
        y, state = self.mixer.step(self.norm(x), state)
        return self._with_mlp(x + y), state


class MambaEncoder(nn.Module):
    """Causal subsampling + N Mamba-2 blocks + final norm, exact in whole, chunked and stepped use."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_mels))
        self.register_buffer("feature_std", torch.ones(config.n_mels))
        self.subsampling = STEMS[config.stem](config)
        self.blocks = nn.ModuleList(
            MambaBlock(config, config.ngroups, config.mlp_ratio, config.norm) for _ in range(config.n_layers)
        )
        self.norm = NORMS[config.norm](config.d_model)

    def set_backend(self, backend: str):
        """Force "torch" or "kernels" for every layer, or go back to "auto"."""
        for block in self.blocks:
            block.mixer.backend = backend

    def initial_state(self, batch_size: int = 1, device=None) -> EncoderState:
        weight = self.subsampling.conv2.weight
        device, dtype = device or weight.device, weight.dtype
        return EncoderState(
            self.subsampling.initial_state(batch_size, device, dtype),
            [block.mixer.initial_state(batch_size, device, dtype) for block in self.blocks],
        )

    def _normalise(self, features):
        if features.shape[1] % SUBSAMPLING:
            raise ValueError(f"the encoder takes feature frames in groups of {SUBSAMPLING}, got {features.shape[1]}")
        dtype = self.subsampling.conv2.weight.dtype
        return ((features.to(self.feature_mean.device, dtype) - self.feature_mean) / self.feature_std).to(dtype)

    def forward(self, features, state: EncoderState | None = None, lengths: torch.Tensor | None = None):
        """features (b, 4T, n_mels) -> (encoded (b, T, d_model), new state).

        `lengths` (b,) counts real encoder frames per row of a padded batch; each row's state is
        taken after its last real frame.
        """
        encoded, state, _ = self.forward_hidden(features, state, lengths)
        return encoded, state

    def forward_hidden(self, features, state: EncoderState | None = None, lengths: torch.Tensor | None = None):
        """As `forward`, plus the hidden frames after the stem and after each block (a list of
        n_layers + 1 tensors (b, T, d_model)), for layer-wise distillation."""
        if state is None:
            state = self.initial_state(features.shape[0], self.feature_mean.device)
        x, sub_state = self.subsampling(self._normalise(features), state.subsampling, lengths)
        hidden, layer_states = [x], []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block(x, layer_state, lengths)
            hidden.append(x)
            layer_states.append(layer_state)
        return self.norm(x), EncoderState(sub_state, layer_states), hidden

    def step(self, features, state: EncoderState):
        """One encoder frame: features (b, 4, n_mels) -> (encoded (b, d_model), new state)."""
        x, sub_state = self.subsampling(self._normalise(features), state.subsampling)
        x = x[:, 0]
        layer_states = []
        for block, layer_state in zip(self.blocks, state.layers):
            x, layer_state = block.step(x, layer_state)
            layer_states.append(layer_state)
        return self.norm(x), EncoderState(sub_state, layer_states)
