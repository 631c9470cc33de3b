"""Transducer: the loss against a brute-force sum over alignments, the Mamba decoder's whole and
stepped modes, the streaming greedy search over any chunking, and the offline beam search."""

import itertools
import math

import pytest
import torch

from streamssm.decoding.losses import rnnt_loss
from streamssm.decoding.transducer import GreedyTransducerSearch, beam_search, start_state
from streamssm.nn.joiner import Joiner
from streamssm.nn.decoder import DecoderConfig, DecoderState, MambaDecoder
from asr_helpers import tiny_asr_model

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")),
]


def brute_force_nll(logits, targets, frames, labels):
    """-log of the sum over every path from (0, 0) to (T-1, U) then a final blank."""
    lp = logits.log_softmax(-1)
    paths = []
    for label_moves in itertools.combinations(range(frames - 1 + labels), labels):
        t = u = 0
        total = lp.new_zeros(())
        for move in range(frames - 1 + labels):
            if move in label_moves:
                total, u = total + lp[t, u, targets[u]], u + 1
            else:
                total, t = total + lp[t, u, 0], t + 1
        paths.append(total + lp[frames - 1, labels, 0])
    return -torch.logsumexp(torch.stack(paths), 0)


def random_batch(device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames, labels = torch.tensor([5, 3, 1, 4, 2]), torch.tensor([3, 0, 2, 1, 3])
    logits = torch.randn(5, 5, 4, 6, generator=g, dtype=dtype).to(device).requires_grad_()
    targets = torch.randint(1, 6, (5, 3), generator=g).to(device)
    return logits, targets, frames, labels


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_loss_equals_brute_force_sum_over_alignments(device, dtype):
    logits, targets, frames, labels = random_batch(device, dtype)
    loss = rnnt_loss(logits, targets, frames, labels, reduction="none")
    reference = torch.stack([brute_force_nll(logits[i], targets[i], int(frames[i]), int(labels[i])) for i in range(5)])
    tolerance = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(loss, reference, atol=tolerance, rtol=0)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    (reference_grad,) = torch.autograd.grad(reference.sum(), logits)
    assert torch.isfinite(grad).all()
    assert torch.allclose(grad, reference_grad, atol=tolerance, rtol=0)
    assert torch.allclose(rnnt_loss(logits, targets, frames, labels), loss.mean())
    assert torch.allclose(rnnt_loss(logits, targets, frames, labels, reduction="sum"), loss.sum())


def test_loss_gradient_is_finite_at_scale_and_in_half_precision():
    g = torch.Generator().manual_seed(1)
    logits = (10 * torch.randn(2, 40, 9, 12, generator=g)).to(torch.bfloat16).requires_grad_()
    targets = torch.randint(1, 12, (2, 8), generator=g)
    loss = rnnt_loss(logits, targets, torch.tensor([40, 17]), torch.tensor([8, 5]))
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(logits.grad.float()).all()


def test_loss_rejects_bad_input():
    logits, targets, frames, labels = random_batch("cpu", torch.float32)
    with pytest.raises(ValueError, match="other than the blank"):
        rnnt_loss(logits, torch.zeros_like(targets), frames, labels)
    with pytest.raises(ValueError, match="logit_lengths must be in"):
        rnnt_loss(logits, targets, frames + 1, labels)
    with pytest.raises(ValueError, match="target_lengths must be in"):
        rnnt_loss(logits, targets, frames, labels + 1)
    with pytest.raises(ValueError, match=r"targets must be \(b, U\)"):
        rnnt_loss(logits, targets[:, :2], frames, labels)
    with pytest.raises(ValueError, match="reduction"):
        rnnt_loss(logits, targets, frames, labels, reduction="max")


@torch.no_grad()
def test_decoder_whole_pass_equals_stepping_and_state_is_fixed():
    torch.manual_seed(0)
    decoder = MambaDecoder(DecoderConfig(d_model=32, n_layers=2, d_state=16, headdim=16, block_size=8), 20).eval()
    tokens = torch.randint(0, 20, (3, 30))
    whole, whole_state = decoder(tokens)
    state, size, steps = decoder.initial_state(3), None, []
    for u in range(tokens.shape[1]):
        out, state = decoder.step(tokens[:, u], state)
        steps.append(out)
        assert size in (None, state.nbytes)
        size = state.nbytes
    assert torch.allclose(torch.stack(steps, 1), whole, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(state.tensors(), whole_state.tensors()))
    rows = DecoderState.stack(whole_state.unbind())
    assert all(torch.equal(a, b) for a, b in zip(rows.tensors(), whole_state.tensors()))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 20\)"):
        decoder(torch.tensor([[3, 20]]))


@pytest.fixture(scope="module")
def model():
    return tiny_asr_model()


@pytest.fixture(scope="module")
def encoded(model):
    torch.manual_seed(5)
    with torch.no_grad():
        return model.encoder(torch.randn(3, 4 * 60, 80))[0]


def test_greedy_search_over_any_chunking_equals_the_whole_utterance(model):
    search = GreedyTransducerSearch(model.decoder, model.joiner, max_symbols_per_frame=2)
    features = torch.randn(1, 4 * 80, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole, _ = search.run(model.encoder(features)[0])
    assert len(whole[0]) > 10
    for chunk in (1, 3, 7, 80):
        found, encoder_state, search_state = [], None, None
        for start in range(0, 80, chunk):
            with torch.no_grad():
                out, encoder_state = model.encoder(features[:, 4 * start : 4 * (start + chunk)], encoder_state)
            emissions, search_state = search.run(out, search_state)
            found += [(token, start + frame, lp) for token, frame, lp in emissions[0]]
        assert [(t, f) for t, f, _ in found] == [(t, f) for t, f, _ in whole[0]]
        assert all(math.isclose(a[2], b[2], abs_tol=1e-4) for a, b in zip(found, whole[0]))


def test_batched_greedy_search_with_lengths_equals_each_alone(model, encoded):
    search = GreedyTransducerSearch(model.decoder, model.joiner)
    lengths = torch.tensor([60, 21, 44])
    batched, state = search.run(encoded, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        alone, alone_state = search.run(encoded[i : i + 1, :n])
        assert [(t, f) for t, f, _ in batched[i]] == [(t, f) for t, f, _ in alone[0]]
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(state.select([i]).tensors(), alone_state.tensors()))
    with pytest.raises(ValueError, match="max_symbols_per_frame"):
        GreedyTransducerSearch(model.decoder, model.joiner, max_symbols_per_frame=0)


def test_reset_restarts_only_the_given_rows(model, encoded):
    search = GreedyTransducerSearch(model.decoder, model.joiner)
    _, state = search.run(encoded)
    reset = search.reset(state, [1])
    fresh = search.initial_state(1)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(reset.select([1]).tensors(), fresh.tensors()))
    assert all(torch.equal(a, b) for a, b in zip(reset.select([0, 2]).tensors(), state.select([0, 2]).tensors()))


def test_beam_of_one_is_greedy_with_one_symbol_per_frame(model, encoded):
    greedy, _ = GreedyTransducerSearch(model.decoder, model.joiner, max_symbols_per_frame=1).run(encoded[:1])
    best, _ = beam_search(model.decoder, model.joiner, encoded[0], beam=1)
    assert [(t, f) for t, f, _ in best] == [(t, f) for t, f, _ in greedy[0]]
    assert beam_search(model.decoder, model.joiner, encoded[0], beam=4)[0]
    with pytest.raises(ValueError, match="beam must be"):
        beam_search(model.decoder, model.joiner, encoded[0], beam=0)
    with pytest.raises(ValueError, match=r"\(T, d\)"):
        beam_search(model.decoder, model.joiner, encoded, beam=2)


@torch.no_grad()
def test_wide_beam_finds_the_most_probable_label_sequence():
    """With every hypothesis kept, the beam search returns the label sequence whose alignments
    (at most one label per frame) have the largest total probability: checked by enumeration."""
    torch.manual_seed(7)
    frames, vocab = 4, 4
    decoder = MambaDecoder(DecoderConfig(d_model=16, n_layers=1, d_state=8, headdim=8), vocab).eval()
    joiner = Joiner(8, 16, 16, vocab)
    encoded = 3 * torch.randn(frames, 8)
    inputs = joiner.encoder_proj(encoded)
    totals = {}
    for alignment in itertools.product(range(vocab), repeat=frames):  # 0 = blank at that frame
        state, logprob = start_state(decoder, joiner, 1), 0.0
        for t, token in enumerate(alignment):
            logprob += float(joiner.joint(inputs[t], state.predicted).log_softmax(-1)[0, token])
            if token:
                out, decoder_state = decoder.step(torch.tensor([token]), state.decoder)
                state = type(state)(decoder_state, joiner.decoder_proj(out))
        labels = tuple(token for token in alignment if token)
        totals[labels] = math.log(math.exp(totals.get(labels, -math.inf)) + math.exp(logprob))
    best_labels = max(totals, key=totals.get)
    found, score = beam_search(decoder, joiner, encoded, beam=vocab**frames)
    assert tuple(t for t, _, _ in found) == best_labels
    assert math.isclose(score, totals[best_labels], abs_tol=1e-4)
