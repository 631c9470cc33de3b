"""MambaEncoder and EncoderState: batches of streams of different ages, state size, errors."""

import pytest
import torch

from streamssm.nn.encoder import EncoderConfig, EncoderState, MambaEncoder

SMALL = EncoderConfig(d_model=64, n_layers=2, d_state=16, headdim=16, subsampling_channels=64, block_size=16)


def relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return MambaEncoder(SMALL).eval()


@torch.no_grad()
def test_batch_of_streams_of_different_ages_matches_each_alone(encoder):
    """Three streams started at different times are stepped as one batch, then split again."""
    g = torch.Generator().manual_seed(1)
    histories = [torch.randn(1, 4 * n, 80, generator=g) for n in (3, 50, 11)]
    futures = [torch.randn(1, 4 * n, 80, generator=g) for n in (20, 20, 20)]
    states = [encoder(h)[1] for h in histories]
    batched_out, batched_state = encoder(torch.cat(futures), EncoderState.stack(states))
    for i, (state, future) in enumerate(zip(states, futures)):
        alone_out, alone_state = encoder(future, state)
        assert relative_error(batched_out[i : i + 1], alone_out) < 1e-5
        split = batched_state.unbind()[i]
        assert all(relative_error(a, b) < 1e-5 for a, b in zip(split.tensors(), alone_state.tensors()))


@torch.no_grad()
def test_padded_batch_of_different_lengths_matches_each_alone(encoder):
    g = torch.Generator().manual_seed(2)
    lengths = torch.tensor([30, 7, 19])
    features = torch.randn(3, 4 * 30, 80, generator=g)
    out, state = encoder(features, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        alone_out, alone_state = encoder(features[i : i + 1, : 4 * n])
        assert relative_error(out[i : i + 1, :n], alone_out) < 1e-5
        assert all(relative_error(a, b) < 1e-5 for a, b in zip(state.select([i]).tensors(), alone_state.tensors()))


@torch.no_grad()
def test_state_size_is_fixed_and_state_moves(encoder):
    state = encoder.initial_state(1)
    size = state.nbytes
    assert size > 0
    for frames in (4, 40, 400):
        _, state = encoder(torch.randn(1, frames, 80), state)
        assert state.nbytes == size
    assert EncoderState.stack([state, state, state]).nbytes == 3 * size
    moved = state.to("meta")
    assert all(t.device.type == "meta" for t in moved.tensors()) and moved.nbytes == size


def test_features_must_come_in_groups_of_four(encoder):
    with pytest.raises(ValueError, match="groups of 4"):
        encoder(torch.randn(1, 6, 80))


@torch.no_grad()
def test_float64_model_keeps_float64_state():
    double = MambaEncoder(SMALL).double()
    state = double.initial_state(1)
    assert all(t.dtype == torch.float64 for t in state.tensors())
