"""Weight transfer from a Whisper encoder into a causal Mamba student (MOHAWK's first step).

    tensors = whisper_tensors("whisper-tiny.en")     # every weight of the teacher, numpy fp16
    teacher = WhisperEncoder(tensors)                # the teacher's encoder in PyTorch: all hidden states
    student = MambaEncoder(student_config(tensors))  # Whisper's shape, attention replaced by Mamba-2
    transfer(student, tensors)                       # stem, norms, MLPs; mixer x/B/C/out from V/K/Q/O

The student reads our causal log-mel front configured as Whisper's (`WHISPER_FEATURES`: 400-point
FFT, Slaney mel filters) with Whisper's scaling as fixed statistics instead of its per-utterance
clamp; `whisper_input` turns those features into what the teacher reads. Whisper's 20 ms frames are
averaged in pairs (the student's stem does the same), so both give 40 ms frames.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..features import FeatureConfig
from ..nn.encoder import EncoderConfig, MambaEncoder
from .ctranslate2_weights import read_ctranslate2
from .teachers import TEACHER_DIRS, to_student_frames

# Whisper's log-mel analysis on our causal framing; log_floor 1e-7 is Whisper's clamp (max - 8, in
# log10) for a clip whose loudest mel bin reaches log10 = 1
WHISPER_FEATURES = FeatureConfig(n_fft=400, f_min=0.0, f_max=8000.0, mel_scale="slaney", log_floor=1e-7)
LOG10 = math.log(10.0)
WHISPER_OFFSET, WHISPER_SCALE = -4.0 * LOG10, 4.0 * LOG10  # (log10 mel + 4) / 4, from natural-log features
POSITIONS_AVERAGED = 500  # the positional embeddings of the first 10 s make the stem's offset


def whisper_tensors(teacher: str = "whisper-tiny.en") -> dict[str, np.ndarray]:
    """A teacher's weights: a name (its model.bin, from the distill extra) or an .npz of its encoder
    (`save_encoder_tensors`, what travels to a machine without the teacher's package)."""
    if teacher.endswith(".npz"):
        with np.load(teacher) as stored:
            return dict(stored)
    if teacher not in TEACHER_DIRS:
        raise ValueError(f"unknown teacher {teacher!r}; known: {sorted(TEACHER_DIRS)} or an .npz of encoder tensors")
    return read_ctranslate2(TEACHER_DIRS[teacher]() / "model.bin")


def save_encoder_tensors(teacher: str, path) -> dict[str, np.ndarray]:
    """Write the encoder part of a teacher's weights (all that transfer and alignment read) to the
    .npz `path`, as stored (float16); returns them."""
    tensors = {name: values for name, values in whisper_tensors(teacher).items() if name.startswith("encoder/")}
    np.savez(path, **tensors)
    return tensors


def _tensor(tensors, name) -> torch.Tensor:
    return torch.from_numpy(np.asarray(tensors[f"encoder/{name}"], np.float32))


def _layer_count(tensors) -> int:
    return len({match[1] for name in tensors if (match := re.match(r"encoder/layer_(\d+)/", name))})


def whisper_input(features: torch.Tensor) -> torch.Tensor:
    """Natural-log mel features (b, T, 80) of WHISPER_FEATURES, unpadded -> the teacher's input
    (b, T, 80): log10, clamped at 8 below each utterance's maximum, scaled."""
    log10 = features / LOG10
    peak = log10.amax(dim=(1, 2), keepdim=True)
    return (torch.maximum(log10, peak - 8.0) + 4.0) / 4.0


class WhisperEncoder(nn.Module):
    """A Whisper encoder (the teacher) from CTranslate2 tensors, float32, bidirectional.

    `forward(mel)` takes whisper_input frames (b, T, 80) and returns the hidden states at 40 ms
    (pairs of Whisper's frames averaged): after the stem and positional embedding, after each
    layer, and the final layer norm's output, each (b, T // 4, d).
    """

    def __init__(self, tensors: dict[str, np.ndarray]):
        super().__init__()
        self.heads = int(np.asarray(tensors["encoder/num_heads"]))
        self.n_layers = _layer_count(tensors)
        for name, values in tensors.items():  # buffers, so that .to() moves them (a teacher on the GPU)
            if name.startswith("encoder/") and np.issubdtype(np.asarray(values).dtype, np.floating):
                self.register_buffer(_buffer_name(name), _tensor(tensors, name.split("/", 1)[1]), persistent=False)

    def _weight(self, name: str) -> torch.Tensor:
        """The teacher's tensor encoder/`name`."""
        return getattr(self, _buffer_name(f"encoder/{name}"))

    def _linear(self, x, name: str):
        return F.linear(x, self._weight(f"{name}/weight"), self._weight(f"{name}/bias"))

    def _layer_norm(self, x, name: str):
        return F.layer_norm(x, x.shape[-1:], self._weight(f"{name}/gamma"), self._weight(f"{name}/beta"))

    @torch.no_grad()
    def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x = F.gelu(F.conv1d(mel.transpose(1, 2), self._weight("conv1/weight"), self._weight("conv1/bias"), padding=1))
        x = F.gelu(F.conv1d(x, self._weight("conv2/weight"), self._weight("conv2/bias"), stride=2, padding=1))
        x = x.transpose(1, 2) + self._weight("position_encodings/encodings")[: x.shape[2]]
        hidden = [x]
        for i in range(self.n_layers):
            layer = f"layer_{i}"
            x = x + self._attention(self._layer_norm(x, f"{layer}/self_attention/layer_norm"), layer)
            h = self._layer_norm(x, f"{layer}/ffn/layer_norm")
            x = x + self._linear(F.gelu(self._linear(h, f"{layer}/ffn/linear_0")), f"{layer}/ffn/linear_1")
            hidden.append(x)
        hidden.append(self._layer_norm(x, "layer_norm"))
        return [to_student_frames(h) for h in hidden]

    def _attention(self, x, layer: str):
        qkv = self._linear(x, f"{layer}/self_attention/linear_0")
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return self._linear(y, f"{layer}/self_attention/linear_1")


def _buffer_name(name: str) -> str:
    """A module attribute for a tensor path (buffer names cannot hold '/' or '.')."""
    return name.replace("/", "__").replace(".", "_")


def student_config(tensors: dict[str, np.ndarray]) -> EncoderConfig:
    """The student of a Whisper encoder: its width, depth and heads; a Mamba-2 mixer (one B/C
    group per attention head, state size = head size) where attention was, its MLP and norms."""
    width = tensors["encoder/layer_norm/gamma"].shape[0]
    heads = int(np.asarray(tensors["encoder/num_heads"]))
    return EncoderConfig(
        n_mels=tensors["encoder/conv1/weight"].shape[1],
        d_model=width,
        n_layers=_layer_count(tensors),
        d_state=width // heads,
        headdim=width // heads,
        expand=1,
        ngroups=heads,
        mlp_ratio=tensors["encoder/layer_0/ffn/linear_0/weight"].shape[0] // width,
        norm="layer",
        stem="whisper",
    )


@torch.no_grad()
def transfer(student: MambaEncoder, tensors: dict[str, np.ndarray]) -> MambaEncoder:
    """Initialise `student` (built from student_config) from the teacher's weights, in place.

    Copied: the conv stem, the mean positional embedding (as the stem's offset), every layer norm,
    every MLP; per layer the mixer's x, B, C and output projections from the attention's V, K, Q
    (scaled as attention scales it) and O, with the depthwise conv started as the identity and
    carrying the V and Q biases. New: the gate z, dt, A (the mixer's own initialisation), D = 0.
    """
    get = lambda name: _tensor(tensors, name)  # noqa: E731
    stem = student.subsampling
    for conv in ("conv1", "conv2"):
        getattr(stem, conv).weight.copy_(get(f"{conv}/weight"))
        getattr(stem, conv).bias.copy_(get(f"{conv}/bias"))
    stem.offset.copy_(get("position_encodings/encodings")[:POSITIONS_AVERAGED].mean(0))
    use_whisper_scaling(student)
    for i, block in enumerate(student.blocks):
        _copy_norm(block.norm, get, f"layer_{i}/self_attention/layer_norm")
        _copy_norm(block.mlp_norm, get, f"layer_{i}/ffn/layer_norm")
        for linear, name in ((block.mlp.fc1, "linear_0"), (block.mlp.fc2, "linear_1")):
            linear.weight.copy_(get(f"layer_{i}/ffn/{name}/weight"))
            linear.bias.copy_(get(f"layer_{i}/ffn/{name}/bias"))
        _copy_attention(block.mixer, get, f"layer_{i}/self_attention")
    _copy_norm(student.norm, get, "layer_norm")
    return student


@torch.no_grad()
def use_whisper_scaling(student: MambaEncoder) -> MambaEncoder:
    """Whisper's feature scaling, (log10 mel + 4) / 4, as the encoder's fixed normalisation."""
    student.feature_mean.fill_(WHISPER_OFFSET)
    student.feature_std.fill_(WHISPER_SCALE)
    return student


def _copy_norm(norm: nn.LayerNorm, get, name: str):
    norm.weight.copy_(get(f"{name}/gamma"))
    norm.bias.copy_(get(f"{name}/beta"))


def _copy_attention(mixer, get, name: str):
    qkv, qkv_bias = get(f"{name}/linear_0/weight"), get(f"{name}/linear_0/bias")
    (wq, wk, wv), (bq, bk, bv) = qkv.chunk(3), qkv_bias.chunk(3)
    scale = 1.0 / math.sqrt(mixer.d_state)
    d = mixer.d_inner
    mixer.in_proj.weight[d : d + mixer.conv_dim].copy_(torch.cat([wv, wk, wq * scale]))  # after z: x, B, C
    mixer.conv_weight.zero_()
    mixer.conv_weight[:, -1] = 1.0  # identity: each channel passes its current frame
    mixer.conv_bias.copy_(torch.cat([bv, bk, bq * scale]))
    mixer.D.zero_()
    mixer.out_proj.weight.copy_(get(f"{name}/linear_1/weight"))
