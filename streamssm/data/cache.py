"""A cache of log-mel features in fp16 shards, so CPU training is not bound by decoding audio.

    python -m streamssm.data cache data/asr_tts/train/manifest.jsonl --out data/cache/asr_tts_train

Layout: OUT/key (identifies the utterances and settings), OUT/shard-NNNNN.npy, (frames, n_mels) float16, the utterances of one shard one after
another; OUT/shard-NNNNN.json, the frame count of each; OUT/index.json: the feature settings, the
key of the utterance list it was built from (audio paths, durations, settings) and each
utterance's (shard, first frame, frames). Shards are written one at a time, so an interrupted
build resumes; a finished cache opens at once in later runs, and a cache of other audio or
settings is refused rather than read. Features are the clean log-mels of `streamssm.features`:
waveform augmentation needs the audio, SpecAugment works on cached features.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..audio import read_audio
from ..features import FeatureConfig, log_mel
from .manifest import Utterance


def cache_key(utterances: list[Utterance], config: FeatureConfig) -> str:
    digest = hashlib.sha1(json.dumps(asdict(config), sort_keys=True).encode())
    for u in utterances:
        digest.update(f"{Path(u.audio).resolve()}\t{u.duration:.4f}\n".encode())
    return digest.hexdigest()


def _write_shard(job: tuple[str, list[str], dict]) -> list[int]:
    """Features of the listed audio files into one shard; returns their frame counts."""
    path, audio_files, config = Path(job[0]), job[1], FeatureConfig(**job[2])
    features = [
        log_mel(read_audio(audio, config.sample_rate), config).numpy().astype(np.float16) for audio in audio_files
    ]
    frames = [len(f) for f in features]
    data = np.concatenate(features) if features else np.zeros((0, config.n_mels), np.float16)
    with open(path.with_suffix(".tmp.npy"), "wb") as out:
        np.save(out, data)
    path.with_suffix(".json").write_text(json.dumps(frames))
    path.with_suffix(".tmp.npy").replace(path)  # the .npy last: its presence marks a finished shard
    return frames


class FeatureCache:
    """Cached features of a list of utterances; `features(i)` is the (T, n_mels) float32 tensor of
    utterance i, read from a memory-mapped shard."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        if not index_path.exists():
            raise FileNotFoundError(f"no feature cache at {self.folder} (index.json missing)")
        index = json.loads(index_path.read_text())
        self.key, self.config, self.items = index["key"], FeatureConfig(**index["config"]), index["items"]
        self._shards = {}

    @classmethod
    def build(
        cls,
        utterances: list[Utterance],
        folder: str | Path,
        config: FeatureConfig = FeatureConfig(),
        shard_size: int = 2000,
        workers: int | None = None,
    ) -> "FeatureCache":
        """Open the cache of these utterances in `folder`, building (or finishing) it first if needed."""
        folder, key = Path(folder), cache_key(utterances, config)
        key_file = folder / "key"  # written first, so an unfinished build of other audio is not resumed
        if key_file.exists() and key_file.read_text() != key:
            raise ValueError(
                f"the feature cache at {folder} was built from other audio or feature settings; "
                "use another folder or delete this one"
            )
        if (folder / "index.json").exists():
            return cls(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)
        jobs = [
            (
                str(folder / f"shard-{k:05d}.npy"),
                [str(u.audio) for u in utterances[start : start + shard_size]],
                asdict(config),
            )
            for k, start in enumerate(range(0, len(utterances), shard_size))
        ]
        todo = [job for job in jobs if not Path(job[0]).exists()]
        with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
            for _ in tqdm(pool.map(_write_shard, todo), total=len(todo), desc="feature shards", unit="shard"):
                pass
        items = []
        for k, job in enumerate(jobs):
            start = 0
            for frames in json.loads(Path(job[0]).with_suffix(".json").read_text()):
                items.append((k, start, frames))
                start += frames
        index = {"key": key, "config": asdict(config), "items": items}
        (folder / "index.json.tmp").write_text(json.dumps(index))
        (folder / "index.json.tmp").replace(folder / "index.json")
        return cls(folder)

    def __len__(self) -> int:
        return len(self.items)

    def features(self, i: int) -> torch.Tensor:
        shard, start, frames = self.items[i]
        if shard not in self._shards:
            self._shards[shard] = np.load(self.folder / f"shard-{shard:05d}.npy", mmap_mode="r")
        return torch.from_numpy(self._shards[shard][start : start + frames].astype(np.float32))


def main(argv=None):
    from .readers import read_corpus

    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data cache", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", help="a manifest (.jsonl), a LibriSpeech folder or a Speech Commands folder")
    parser.add_argument("--out", type=Path, required=True, help="cache folder")
    parser.add_argument("--shard-size", type=int, default=2000, help="utterances per shard")
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    utterances = read_corpus(args.corpus)
    cache = FeatureCache.build(utterances, args.out, shard_size=args.shard_size, workers=args.workers)
    frames = sum(frames for _, _, frames in cache.items)
    size = sum(p.stat().st_size for p in args.out.glob("shard-*.npy"))
    print(f"{len(cache)} utterances, {frames} frames, {size / 2**20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
