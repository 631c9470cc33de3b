"""CausalMamba2: a Mamba-2 (SSD) layer that runs a whole sequence, continues a stream, or steps.

The three modes share one set of weights and give the same numbers:

    y, state = layer(x)                 # whole sequence from a zero state
    y, state = layer(x_chunk, state)    # continue a stream, any chunk length >= 1
    y_t, state = layer.step(x_t, state) # one frame

`Mamba2State` holds the depthwise-conv tail (the last d_conv - 1 inputs) and the SSM state,
which is float32 even when the weights run in bf16/fp16. States are never modified in place:
every call returns a new one, so a caller can retry or discard a chunk.

On CUDA, when mamba-ssm and causal-conv1d import, their kernels do the work; everywhere else a
pure-PyTorch blocked SSD scan runs. `backend` ("auto", "torch", "kernels") forces a choice.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

BACKENDS = ("auto", "torch", "kernels")


class Mamba2State(NamedTuple):
    """Per-stream cache of one layer; dim 0 is the batch of streams."""

    conv: torch.Tensor  # (batch, conv_dim, d_conv - 1), activation dtype
    ssm: torch.Tensor  # (batch, nheads, headdim, d_state), float32 (float64 for a float64 model)


@functools.lru_cache(maxsize=None)
def cuda_kernels():
    """The mamba-ssm / causal-conv1d entry points, or None when they do not import."""
    try:
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except (ImportError, OSError):
        return None
    return {
        "chunk_scan": mamba_chunk_scan_combined,
        "state_update": selective_state_update,
        "conv": causal_conv1d_fn,
        "conv_update": causal_conv1d_update,
    }


def ssd_scan(x, dt, A, B, C, h0, block_size: int = 64):
    """Blocked SSD scan: h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T, y_t = h_t C_t.

    x (b, L, h, p), dt (b, L, h) after softplus, A (h,) negative, h0 (b, h, p, n); B/C (b, L, n)
    shared by all heads or (b, L, h, n), one per head.
    Returns y (b, L, h, p) and the final state, both in h0's dtype. Within a block the
    recurrence is unrolled as a masked (L x L) product; blocks are chained through the state.
    """
    dtype = h0.dtype
    # heads-first layouts so that every product below is a plain (batched) matmul
    x = x.to(dtype).permute(0, 2, 1, 3)  # (b, h, L, p)
    dt = dt.to(dtype).transpose(1, 2)  # (b, h, L)
    shared = B.dim() == 3
    B, C = (B.to(dtype)[:, None], C.to(dtype)[:, None]) if shared else (_heads_first(B, dtype), _heads_first(C, dtype))
    A = A.to(dtype)[:, None]
    length = x.shape[2]
    causal = _causal_mask(min(block_size, length), x.device)
    h, ys = h0, []
    for start in range(0, length, block_size):
        xb, dtb = x[:, :, start : start + block_size], dt[:, :, start : start + block_size]
        Bb, Cb = B[:, :, start : start + block_size], C[:, :, start : start + block_size]
        q = xb.shape[2]
        log_decay = torch.cumsum(dtb * A, dim=-1)  # (b, h, q), non-increasing
        # decay from step s to step t (s <= t); mask before exp so only non-positive values are exponentiated
        segment = (log_decay[..., :, None] - log_decay[..., None, :]).masked_fill(~causal[:q, :q], -math.inf)
        weights = (Cb @ Bb.transpose(-1, -2)) * segment.exp() * dtb[..., None, :]  # (b, h, t, s)
        y = weights @ xb + _read_state(Cb, h) * log_decay.exp()[..., None]  # (b, h, q, p)
        to_end = (log_decay[..., -1:] - log_decay).exp() * dtb  # (b, h, q)
        h = h * log_decay[..., -1].exp()[..., None, None] + _write_state(xb * to_end[..., None], Bb)
        ys.append(y)
    y = ys[0] if len(ys) == 1 else torch.cat(ys, dim=2)
    return y.transpose(1, 2), h


def _heads_first(BC, dtype):
    """(b, L, h, n) -> (b, h, L, n)."""
    return BC.to(dtype).permute(0, 2, 1, 3)


# When B and C are shared by all heads, the two products with them are one matrix product per
# stream over every head's rows (heads x headdim), not one small product per head. Same numbers;
# the scan's forward + backward took 15-25 % less in PyTorch (8 x 256 frames, measured), ONNX
# Runtime for 64 streams of 4 frames the same within this machine's noise.
def _read_state(C, h):
    """C (b, 1, q, n) shared or (b, heads, q, n), state h (b, heads, p, n) -> h C per step (b, heads, q, p)."""
    if C.shape[1] > 1:
        return C @ h.transpose(-1, -2)
    b, heads, p, n = h.shape
    return (C[:, 0] @ h.reshape(b, heads * p, n).transpose(1, 2)).unflatten(2, (heads, p)).transpose(1, 2)


def _write_state(u, B):
    """u (b, heads, q, p), B (b, 1, q, n) shared or (b, heads, q, n) -> the sum over steps of u B^T (b, heads, p, n)."""
    if B.shape[1] > 1:
        return u.transpose(-1, -2) @ B
    b, heads, q, p = u.shape
    return (u.permute(0, 1, 3, 2).reshape(b, heads * p, q) @ B[:, 0]).unflatten(1, (heads, p))


def frames_at(x, start, width: int):
    """x[:, start:start+width] of frames x (b, T, c), with `start` an int or one start per row."""
    if isinstance(start, int):
        return x[:, start : start + width]
    index = start.to(x.device)[:, None] + torch.arange(width, device=x.device)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


@functools.lru_cache(maxsize=64)
def _causal_mask(size: int, device: torch.device) -> torch.Tensor:
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


class RMSNorm(nn.Module):
    """Root-mean-square norm, optionally gated by silu(z) before normalising (Mamba-2 style)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x, gate=None):
        dtype = x.dtype
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        if gate is not None:
            x = x * F.silu(gate.to(x.dtype))
        return F.rms_norm(x, x.shape[-1:], self.weight.to(x.dtype), self.eps).to(dtype)


class CausalMamba2(nn.Module):
    """Mamba-2 layer: in-projection to (z, x, B, C, dt), causal depthwise conv over (x, B, C),
    selective scan with a scalar decay per head, D skip, gated RMSNorm, out-projection.

    B and C come in `ngroups` groups, each shared by nheads / ngroups heads (1: by all heads)."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        d_conv: int = 4,
        expand: int = 2,
        headdim: int = 64,
        block_size: int = 64,
        ngroups: int = 1,
        dt_range: tuple[float, float] = (1e-3, 1e-1),
        A_range: tuple[float, float] = (1.0, 16.0),
        backend: str = "auto",
    ):
        super().__init__()
        d_inner = expand * d_model
        if d_inner % headdim:
            raise ValueError(f"expand * d_model = {d_inner} is not a multiple of headdim = {headdim}")
        self.d_model, self.d_state, self.d_conv, self.headdim = d_model, d_state, d_conv, headdim
        self.d_inner, self.nheads, self.block_size = d_inner, d_inner // headdim, block_size
        if self.nheads % ngroups:
            raise ValueError(f"{self.nheads} heads do not split into ngroups = {ngroups} groups")
        self.ngroups = ngroups
        self.conv_dim = d_inner + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d_model, d_inner + self.conv_dim + self.nheads, bias=False)
        self.conv_weight = nn.Parameter(torch.empty(self.conv_dim, d_conv))
        self.conv_bias = nn.Parameter(torch.zeros(self.conv_dim))
        nn.init.uniform_(self.conv_weight, -1 / math.sqrt(d_conv), 1 / math.sqrt(d_conv))
        dt = torch.exp(torch.empty(self.nheads).uniform_(math.log(dt_range[0]), math.log(dt_range[1])))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus(dt_bias) == dt
        self.A_log = nn.Parameter(torch.empty(self.nheads).uniform_(*A_range).log())
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = RMSNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.backend = backend

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, name: str):
        if name not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
        self._backend = name

    def _use_kernels(self, x: torch.Tensor) -> bool:
        if self._backend == "torch":
            return False
        available = x.is_cuda and cuda_kernels() is not None
        if self._backend == "kernels" and not available:
            raise RuntimeError(
                "backend='kernels' needs a CUDA tensor and the mamba-ssm + causal-conv1d kernels "
                "(pip install 'streamssm[cuda]'); use backend='torch' or 'auto'"
            )
        return available

    def initial_state(self, batch_size: int = 1, device=None, dtype=None) -> Mamba2State:
        """The zero state of `batch_size` fresh streams."""
        dtype = dtype or self.in_proj.weight.dtype
        device = device or self.in_proj.weight.device
        return Mamba2State(
            torch.zeros(batch_size, self.conv_dim, self.d_conv - 1, device=device, dtype=dtype),
            torch.zeros(
                batch_size,
                self.nheads,
                self.headdim,
                self.d_state,
                device=device,
                dtype=torch.promote_types(dtype, torch.float32),
            ),
        )

    def _split(self, zxbcdt):
        return torch.split(zxbcdt, [self.d_inner, self.conv_dim, self.nheads], dim=-1)

    def forward(self, x, state: Mamba2State | None = None, lengths: torch.Tensor | None = None):
        """x (b, L, d_model) -> (y (b, L, d_model), new state).

        `lengths` (b,) marks how many leading frames of each row are real: the state returned
        for a row is the one after its last real frame (padding leaves it untouched), so a
        padded batch of streams of different lengths matches each stream run alone.
        """
        b, length, _ = x.shape
        if state is None:
            state = self.initial_state(b, x.device, x.dtype)
        if length == 1 and lengths is None:  # one frame: the step path does less work
            y, state = self.step(x[:, 0], state)
            return y[:, None], state
        z, xbc, dt = self._split(self.in_proj(x))
        padded = torch.cat([state.conv.to(xbc.dtype).transpose(1, 2), xbc], dim=1)  # (b, w-1+L, c): channels last
        new_conv = self._conv_tail(padded, lengths)
        dt = F.softplus(dt.to(state.ssm.dtype) + self.dt_bias.to(state.ssm.dtype))
        if lengths is not None:
            dt = dt * (torch.arange(length, device=x.device) < lengths[:, None].to(x.device))[..., None]
        A = -torch.exp(self.A_log.to(state.ssm.dtype))
        if self._use_kernels(x):
            y, ssm = self._scan_kernels(padded, xbc, dt, A, state)
        else:
            conv = self._depthwise_conv(padded, length)
            xs, B, C = self._split_xbc(F.silu(conv))
            xs = xs.reshape(b, length, self.nheads, self.headdim)
            y, ssm = ssd_scan(xs, dt, A, self._per_head(B), self._per_head(C), state.ssm, self.block_size)
            y = y + xs.to(y.dtype) * self.D.to(y.dtype)[:, None]
        y = self.norm(y.reshape(b, length, self.d_inner), gate=z)
        return self.out_proj(y.to(x.dtype)), Mamba2State(new_conv, ssm)

    def _split_xbc(self, xbc):
        """(..., conv_dim) -> x (..., d_inner), B and C (..., ngroups * d_state)."""
        groups = self.ngroups * self.d_state
        return torch.split(xbc, [self.d_inner, groups, groups], -1)

    def _groups(self, BC):
        """(..., ngroups * d_state) -> (..., ngroups, d_state)."""
        return BC.unflatten(-1, (self.ngroups, self.d_state))

    def _per_head(self, BC):
        """B or C as the scan takes it: (..., d_state) when shared, else (..., nheads, d_state)."""
        if self.ngroups == 1:
            return BC
        return self._groups(BC).repeat_interleave(self.nheads // self.ngroups, dim=-2)

    def _depthwise_conv(self, padded, length):
        """Causal depthwise conv of channels-last inputs (b, w-1+L, c) as d_conv shifted products:
        faster than a grouped conv1d on short chunks in PyTorch (2x) and in ONNX Runtime (10 %), and
        every weight broadcasts over the last dimension (ONNX Runtime's fast case), measured."""
        weight, out = self.conv_weight.to(padded.dtype).T, self.conv_bias.to(padded.dtype)
        for k in range(self.d_conv):
            out = out + padded[:, k : k + length] * weight[k]
        return out

    def _conv_tail(self, padded, lengths):
        """The last d_conv - 1 conv inputs of each row (ending at its length, if given), as the
        state keeps them: (b, c, d_conv - 1)."""
        width = self.d_conv - 1
        start = padded.shape[1] - width if lengths is None else lengths
        return frames_at(padded, start, width).transpose(1, 2).contiguous()

    def _scan_kernels(self, padded, xbc, dt, A, state):
        k = cuda_kernels()
        b, length, _ = xbc.shape
        conv = k["conv"](
            xbc.transpose(1, 2),
            self.conv_weight.to(xbc.dtype),
            self.conv_bias.to(xbc.dtype),
            initial_states=state.conv.to(xbc.dtype).transpose(1, 2).contiguous().transpose(1, 2),
            activation="silu",
        ).transpose(1, 2)
        xs, B, C = self._split_xbc(conv)
        xs = xs.reshape(b, length, self.nheads, self.headdim)
        y, ssm = k["chunk_scan"](
            xs,
            dt.float(),
            A.float(),
            self._groups(B),
            self._groups(C),
            self.block_size,
            D=self.D.float(),
            initial_states=state.ssm.float(),
            dt_softplus=False,
            return_final_states=True,
        )
        return y, ssm.to(state.ssm.dtype)

    def step(self, x, state: Mamba2State):
        """One frame: x (b, d_model) -> (y (b, d_model), new state)."""
        z, xbc, dt = self._split(self.in_proj(x))
        dt = F.softplus(dt.to(state.ssm.dtype) + self.dt_bias.to(state.ssm.dtype))  # (b, h)
        A = -torch.exp(self.A_log.to(state.ssm.dtype))
        if self._use_kernels(x):
            y, new_state = self._step_kernels(xbc, dt, A, state)
        else:
            window = torch.cat([state.conv.to(xbc.dtype), xbc[:, :, None]], dim=2)  # (b, c, w)
            conv = F.silu((window * self.conv_weight.to(xbc.dtype)).sum(-1) + self.conv_bias.to(xbc.dtype))
            xs, B, C = self._split_xbc(conv.to(state.ssm.dtype))
            xs = xs.reshape(-1, self.nheads, self.headdim)
            B, C = self._step_layout(B), self._step_layout(C)
            ssm = state.ssm * torch.exp(dt * A)[..., None, None] + (dt[..., None] * xs)[..., None] * B
            y = (ssm * C).sum(-1) + xs * self.D.to(xs.dtype)[:, None]
            new_state = Mamba2State(window[:, :, 1:], ssm)
        y = self.norm(y.reshape(-1, self.d_inner), gate=z)
        return self.out_proj(y.to(x.dtype)), new_state

    def _step_layout(self, BC):
        """B or C of one frame (b, ngroups * d_state) -> (b, 1 or nheads, 1, d_state), against the state (b, h, p, n)."""
        if self.ngroups == 1:
            return BC[:, None, None, :]
        return self._per_head(BC)[:, :, None, :]

    def _step_kernels(self, xbc, dt, A, state):
        k = cuda_kernels()
        conv_state = state.conv.to(xbc.dtype).clone()
        conv = k["conv_update"](xbc, conv_state, self.conv_weight.to(xbc.dtype), self.conv_bias.to(xbc.dtype), "silu")
        xs, B, C = self._split_xbc(conv)
        xs = xs.reshape(-1, self.nheads, self.headdim)
        p, n = self.headdim, self.d_state
        ssm = state.ssm.float().clone()
        y = k["state_update"](
            ssm,
            xs,
            dt.float()[..., None].expand(-1, -1, p),
            A.float()[:, None, None].expand(-1, p, n),
            self._groups(B),
            self._groups(C),
            D=self.D.float()[:, None].expand(-1, p),
            dt_softplus=False,
        )
        return y, Mamba2State(conv_state, ssm.to(state.ssm.dtype))
