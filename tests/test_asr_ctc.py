"""CTC: streaming greedy search equals the offline collapse whatever the chunk boundaries; the loss."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from streamssm.decoding.ctc import CTCGreedySearch
from streamssm.decoding.losses import ctc_loss

VOCAB = 6
LABELS = [0, 3, 3, 0, 3, 2, 2, 2, 0, 0, 5, 5, 1, 4, 4, 0, 4, 4, 4, 3]  # best label of each frame


def identity_head():
    """A CTC head that passes frames through, so test frames are the logits themselves."""
    head = nn.Linear(VOCAB, VOCAB, bias=False)
    nn.init.eye_(head.weight)
    return head


def frames_of(labels):
    return 5.0 * F.one_hot(torch.tensor(labels), VOCAB).float()


def collapse(labels):
    return [label for label, _ in itertools.groupby(labels) if label != 0]


def test_streaming_greedy_equals_offline_collapse_across_chunk_boundaries():
    search = CTCGreedySearch(identity_head())
    frames = frames_of(LABELS)[None]
    whole, _ = search.run(frames)
    assert [t for t, _, _ in whole[0]] == collapse(LABELS) == [3, 3, 2, 5, 1, 4, 4, 3]
    assert [f for _, f, _ in whole[0]] == [1, 4, 5, 10, 12, 13, 16, 19]  # a token's first frame
    rng = np.random.default_rng(0)
    cuts = [list(range(1, len(LABELS)))]  # every frame its own chunk
    cuts += [sorted(rng.choice(range(1, len(LABELS)), 5, replace=False)) for _ in range(20)]
    for cut in cuts:
        found, state = [], None
        for start, end in zip([0, *cut], [*cut, len(LABELS)]):
            emissions, state = search.run(frames[:, start:end], state)
            found += [(token, start + frame) for token, frame, _ in emissions[0]]
        assert found == [(t, f) for t, f, _ in whole[0]]


def test_batched_rows_with_lengths_equal_each_alone():
    search = CTCGreedySearch(identity_head())
    rows = [LABELS, LABELS[5:] + [0] * 5, LABELS[:9] + [0] * 11]
    lengths = torch.tensor([20, 15, 9])
    batched, state = search.run(torch.stack([frames_of(r) for r in rows]), lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        alone, alone_state = search.run(frames_of(rows[i][:n])[None])
        assert batched[i] == alone[0]
        assert torch.equal(state.select([i]).previous, alone_state.previous)
    assert search.reset(state, [0]) is state  # the previous label is kept across an endpoint


def test_loss_is_the_batch_mean_of_per_utterance_sums():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 12, VOCAB, generator=g, requires_grad=True)
    targets = torch.tensor([[1, 2, 2], [3, 0, 0], [4, 5, 1]])
    lengths, target_lengths = torch.tensor([12, 7, 2]), torch.tensor([3, 1, 3])  # the last row is impossible
    loss = ctc_loss(logits, lengths, targets, target_lengths)
    per_row = [
        F.ctc_loss(
            logits[i, : lengths[i]].log_softmax(-1),
            targets[i, : target_lengths[i]],
            lengths[i : i + 1],
            target_lengths[i : i + 1],
            reduction="sum",
        )
        for i in range(2)
    ]
    assert torch.allclose(loss, sum(per_row) / 3)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match=r"need logits \(b, T, V\)"):
        ctc_loss(logits[0], lengths, targets, target_lengths)
