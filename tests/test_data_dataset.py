"""Duration-bucketed batches: seeded, bounded, split across DDP ranks; the fp16 feature cache."""

import numpy as np
import pytest
import soundfile
import torch

from streamssm.audio import read_audio
from streamssm.data.augment import Augmenter
from streamssm.data.cache import FeatureCache
from streamssm.data.dataset import DurationBatchSampler, make_loader
from streamssm.data.manifest import Utterance
from streamssm.features import log_mel


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    utterances = []
    for i, seconds in enumerate(rng.uniform(0.3, 1.5, 12)):
        path = tmp_path / "audio" / f"{i}.flac"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, (0.1 * rng.normal(size=int(seconds * 16000))).astype(np.float32), 16000)
        utterances.append(Utterance(path, text=f"utterance {i}", duration=float(seconds)))
    soundfile.write(tmp_path / "noise.flac", (0.1 * rng.normal(size=32000)).astype(np.float32), 16000)
    return utterances


def test_batches_are_bounded_seeded_and_cover_everything():
    durations = np.random.default_rng(1).uniform(0.5, 15, 1000)
    sampler = DurationBatchSampler(durations, max_seconds=60, seed=3, rank=0, world_size=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) * durations[b].max() <= 60 for b in batches)
    assert batches == list(DurationBatchSampler(durations, 60, seed=3, rank=0, world_size=1))
    sampler.set_epoch(1)
    assert list(sampler) != batches and len(sampler) == len(list(sampler))


def test_ranks_get_disjoint_equal_shares():
    durations = np.random.default_rng(2).uniform(0.5, 15, 999)
    ranks = [list(DurationBatchSampler(durations, 60, seed=0, rank=r, world_size=3)) for r in range(3)]
    assert len({len(batches) for batches in ranks}) == 1
    seen = [i for batches in ranks for b in batches for i in b]
    assert len(seen) == len(set(seen)) > 900
    with pytest.raises(ValueError, match="rank"):
        DurationBatchSampler(durations, 60, rank=3, world_size=3)


def test_same_seed_gives_the_same_batch(corpus, tmp_path):
    def first_batches(seed, workers):
        augmenter = Augmenter(noise_dir=tmp_path, seed=123, p_noise=1, p_speed=0.5, p_pitch=0.5)
        loader = make_loader(
            corpus,
            max_seconds=4,
            seed=seed,
            num_workers=workers,
            augmenter=augmenter,
            spec_augment=True,
            rank=0,
            world_size=1,
        )
        return list(loader)[:2]

    first, again, other = first_batches(0, 0), first_batches(0, 2), first_batches(1, 0)
    for a, b in zip(first, again):
        assert a["texts"] == b["texts"] and torch.equal(a["features"], b["features"])
    assert not all(a["texts"] == b["texts"] and torch.equal(a["features"], b["features"]) for a, b in zip(first, other))
    batch = first[0]
    assert batch["features"].shape == (len(batch["texts"]), int(batch["lengths"].max()), 80)


def test_feature_cache_round_trip_and_reuse(corpus, tmp_path):
    cache = FeatureCache.build(corpus, tmp_path / "cache", shard_size=5, workers=1)
    assert len(cache) == len(corpus) and len(list((tmp_path / "cache").glob("shard-*.npy"))) == 3
    for i in (0, 7, 11):
        expected = log_mel(read_audio(corpus[i].audio))
        assert cache.features(i).shape == expected.shape
        assert torch.allclose(cache.features(i), expected, atol=0.02, rtol=2e-3)
    stamp = (tmp_path / "cache" / "shard-00000.npy").stat().st_mtime_ns
    assert FeatureCache.build(corpus, tmp_path / "cache").items == cache.items
    assert (tmp_path / "cache" / "shard-00000.npy").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="other audio"):
        FeatureCache.build(corpus[:-1], tmp_path / "cache")
    batches = list(make_loader(corpus, max_seconds=4, cache=cache, rank=0, world_size=1))
    assert sum(len(b["texts"]) for b in batches) == len(corpus) and batches[0]["features"].dtype == torch.float32
