"""Training batches from manifests: duration-bucketed, seeded, one shard of batches per DDP rank.

    utterances = read_manifest("data/asr_tts/train/manifest.jsonl")
    loader = make_loader(utterances, max_seconds=320, seed=0, augmenter=Augmenter(noise_dir=...))
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch); loader.dataset.set_epoch(epoch)
        for batch in loader:               # features (B, T, n_mels), lengths (B,), texts, keywords, indices
            ...

A batch holds utterances of similar length: each epoch the utterances are shuffled, cut into pools
of `pool_batches` batches' worth, each pool sorted by duration and cut greedily into batches whose
padded length (longest duration x count) stays under `max_seconds`; the batches are then shuffled.
Every rank gets the same number of batches (the few left over are dropped). Every example draws
its randomness from (seed, epoch, index), so a batch does not depend on the number of workers.
With a `FeatureCache` and no waveform augmenter, features are read from the cache instead of
decoding and analysing audio (SpecAugment still applies).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from ..audio import read_audio
from ..features import FeatureConfig, log_mel
from .augment import Augmenter, spec_augment
from .manifest import Utterance


def _rank_and_world(rank, world_size) -> tuple[int, int]:
    if rank is None or world_size is None:
        initialized = dist.is_available() and dist.is_initialized()
        rank = (dist.get_rank() if initialized else 0) if rank is None else rank
        world_size = (dist.get_world_size() if initialized else 1) if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return rank, world_size


class DurationBatchSampler(torch.utils.data.Sampler):
    """Lists of indices whose padded length stays under `max_seconds` (a longer utterance is a batch
    of its own). rank/world_size default to torch.distributed's when it is initialised."""

    def __init__(
        self,
        durations,
        max_seconds: float,
        seed: int = 0,
        shuffle: bool = True,
        pool_batches: int = 50,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self.durations = np.asarray(durations, np.float64)
        self.max_seconds, self.seed, self.shuffle, self.pool_batches = max_seconds, seed, shuffle, pool_batches
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.durations)) if self.shuffle else np.arange(len(self.durations))
        per_batch = max(1, int(self.max_seconds / max(1e-3, float(np.median(self.durations))))) if len(order) else 1
        pool = per_batch * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool].tolist(), key=lambda i: self.durations[i])
            batch = []
            for i in chunk:  # ascending, so the newest item is the longest
                if batch and (len(batch) + 1) * self.durations[i] > self.max_seconds:
                    batches.append(batch)
                    batch = []
                batch.append(i)
            if batch:
                batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        batches = self._all_batches()
        usable = len(batches) // self.world_size * self.world_size
        return iter(batches[self.rank : usable : self.world_size])

    def __len__(self) -> int:
        return len(self._all_batches()) // self.world_size


class SpeechDataset(torch.utils.data.Dataset):
    """Utterance i -> {"features": (T, n_mels) float32, "text", "keyword", "index"}."""

    def __init__(
        self,
        utterances: list[Utterance],
        config: FeatureConfig = FeatureConfig(),
        augmenter: Augmenter | None = None,
        spec_augment: bool = False,
        cache=None,
        seed: int = 0,
    ):
        if cache is not None and len(cache) != len(utterances):
            raise ValueError(f"the feature cache holds {len(cache)} utterances, the dataset {len(utterances)}")
        self.utterances, self.config, self.augmenter = utterances, config, augmenter
        self.spec_augment, self.cache, self.seed, self.epoch = spec_augment, cache, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict:
        utterance = self.utterances[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.cache is not None and self.augmenter is None:
            features = self.cache.features(index)
        else:
            audio = read_audio(utterance.audio, self.config.sample_rate)
            if self.augmenter is not None:
                self.augmenter.reseed(rng.integers(2**63))
                audio = self.augmenter(audio)
            features = log_mel(audio, self.config)
        if self.spec_augment:
            features = spec_augment(features, rng)
        return {"features": features, "text": utterance.text, "keyword": utterance.keyword, "index": index}


def collate(items: list[dict]) -> dict:
    """Pad features to (B, T_max, n_mels); lengths (B,) in frames; texts, keywords and indices as lists."""
    return {
        "features": torch.nn.utils.rnn.pad_sequence([item["features"] for item in items], batch_first=True),
        "lengths": torch.tensor([item["features"].shape[0] for item in items]),
        "texts": [item["text"] for item in items],
        "keywords": [item["keyword"] for item in items],
        "indices": [item["index"] for item in items],
    }


def make_loader(
    utterances: list[Utterance],
    max_seconds: float,
    seed: int = 0,
    num_workers: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    **dataset_options,
) -> torch.utils.data.DataLoader:
    """A DataLoader of duration-bucketed batches (options as for SpeechDataset)."""
    dataset = SpeechDataset(utterances, seed=seed, **dataset_options)
    sampler = DurationBatchSampler(
        [u.duration for u in utterances], max_seconds, seed, rank=rank, world_size=world_size
    )
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
