"""CausalMamba2: the blocked scan against a naive float64 recurrence, and its three modes."""

import pytest
import torch

from streamssm.nn.ssm import CausalMamba2, cuda_kernels, ssd_scan


def relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def naive_recurrence(x, dt, A, B, C, h0):
    """h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T; y_t = h_t C_t, one step at a time in float64."""
    x, dt, A, B, C, h = (t.double() for t in (x, dt, A, B, C, h0))
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        h = h * decay + (dt[:, t, :, None] * x[:, t])[..., None] * B[:, t, None, None, :]
        ys.append((h * C[:, t, None, None, :]).sum(-1))
    return torch.stack(ys, dim=1), h


@pytest.mark.parametrize("block_size", [1, 7, 64])
def test_blocked_scan_equals_float64_recurrence(block_size):
    g = torch.Generator().manual_seed(0)
    b, length, heads, p, n = 2, 150, 3, 8, 16
    x = torch.randn(b, length, heads, p, generator=g)
    dt = torch.nn.functional.softplus(torch.randn(b, length, heads, generator=g) - 2)
    A = -torch.rand(heads, generator=g) * 8 - 0.5
    B, C = torch.randn(b, length, n, generator=g), torch.randn(b, length, n, generator=g)
    h0 = torch.randn(b, heads, p, n, generator=g)
    y, h = ssd_scan(x, dt, A, B, C, h0, block_size)
    y_ref, h_ref = naive_recurrence(x, dt, A, B, C, h0)
    err_y, err_h = relative_error(y.double(), y_ref), relative_error(h.double(), h_ref)
    print(f"block {block_size}: max relative error y {err_y:.2e}, state {err_h:.2e}")
    assert err_y < 1e-5 and err_h < 1e-5


@pytest.fixture
def layer():
    torch.manual_seed(0)
    return CausalMamba2(d_model=32, d_state=16, headdim=16, block_size=16, backend="torch").eval()


@torch.no_grad()
def test_whole_chunked_and_stepped_agree(layer):
    x = torch.randn(2, 301, 32)
    y, state = layer(x)
    for chunk in (1, 5, 16, 100):
        s, parts = None, []
        for start in range(0, x.shape[1], chunk):
            part, s = layer(x[:, start : start + chunk], s)
            parts.append(part)
        assert relative_error(torch.cat(parts, 1), y) < 1e-5
        assert all(relative_error(a, b) < 1e-5 for a, b in zip(s, state))
    s, steps = layer.initial_state(2), []
    for t in range(x.shape[1]):
        out, s = layer.step(x[:, t], s)
        steps.append(out)
    assert relative_error(torch.stack(steps, 1), y) < 1e-5
    assert all(relative_error(a, b) < 1e-5 for a, b in zip(s, state))


@torch.no_grad()
def test_states_are_float32_under_bf16_and_never_modified(layer):
    layer = layer.to(torch.bfloat16)
    state = layer.initial_state(1)
    assert state.ssm.dtype == torch.float32 and state.conv.dtype == torch.bfloat16
    _, state = layer(torch.randn(1, 10, 32, dtype=torch.bfloat16), state)
    before = [t.clone() for t in state]
    layer(torch.randn(1, 5, 32, dtype=torch.bfloat16), state)
    layer.step(torch.randn(1, 32, dtype=torch.bfloat16), state)
    assert all(torch.equal(a, b) for a, b in zip(before, state))
    assert state.ssm.dtype == torch.float32


@torch.no_grad()
def test_padded_rows_keep_their_own_state(layer):
    x = torch.randn(3, 40, 32)
    lengths = torch.tensor([40, 17, 1])
    y, state = layer(x, lengths=lengths)
    for row, length in enumerate(lengths.tolist()):
        y_alone, alone = layer(x[row : row + 1, :length])
        assert relative_error(y[row : row + 1, :length], y_alone) < 1e-5
        assert all(relative_error(a[row : row + 1], b) < 1e-5 for a, b in zip(state, alone))


def test_backend_choice(layer):
    with pytest.raises(ValueError, match="backend must be one of"):
        layer.backend = "fast"
    if not torch.cuda.is_available() or cuda_kernels() is None:
        layer.backend = "kernels"
        with pytest.raises(RuntimeError, match="mamba-ssm"):
            layer(torch.randn(1, 4, 32))


@pytest.mark.skipif(
    not torch.cuda.is_available() or cuda_kernels() is None,
    reason="needs CUDA with mamba-ssm and causal-conv1d importable (pip install 'streamssm[cuda]')",
)
@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_path_equals_torch_path(dtype):
    torch.manual_seed(0)
    layer = CausalMamba2(d_model=128, d_state=64, headdim=64).cuda().to(dtype).eval()
    x = torch.randn(4, 203, 128, device="cuda", dtype=dtype)
    tol = 1e-3 if dtype == torch.float32 else 3e-2
    outputs = {}
    for backend in ("torch", "kernels"):
        layer.backend = backend
        first, state = layer(x[:, :100])
        second, state = layer(x[:, 100:], state)
        step, state = layer.step(x[:, 0], state)
        outputs[backend] = (torch.cat([first, second], 1), step, state.ssm, state.conv)
    for a, b in zip(outputs["kernels"], outputs["torch"]):
        err = relative_error(a.float(), b.float())
        print(f"{dtype}: kernels vs torch relative error {err:.2e}")
        assert err < tol
