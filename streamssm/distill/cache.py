"""A teacher's encoder outputs per clip, stored once as fp16 .npy files and read back by every run.

    cache = TeacherCache("data/teacher_cache", "whisper-tiny.en")
    cache.build(utterances)                # computes only the clips not stored yet (progress bar)
    frames = cache.load(utterance)         # (T, d) float16, or None when the clip is not cached

A clip's file is named after its absolute path and byte size, so a re-recorded file is not mistaken
for the old one, and a later run or epoch reads the same file instead of running the teacher.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio import read_audio
from ..data.manifest import Utterance
from .teachers import load_teacher


class TeacherCache:
    def __init__(self, root, teacher: str):
        self.folder, self.teacher = Path(root) / teacher, teacher

    def path(self, utterance: Utterance) -> Path:
        audio = Path(utterance.audio).resolve()
        key = hashlib.sha1(f"{audio}:{audio.stat().st_size}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.npy"

    def load(self, utterance: Utterance) -> np.ndarray | None:
        path = self.path(utterance)
        return np.load(path) if path.exists() else None

    def build(self, utterances: list[Utterance], threads: int = 1) -> int:
        """Encode every clip not cached yet; returns how many were computed."""
        paths = {self.path(u): u for u in utterances}  # a clip listed twice is encoded once
        missing = {path: u for path, u in paths.items() if not path.exists()}
        if not missing:
            return 0
        teacher = load_teacher(self.teacher, threads=threads)
        for path, utterance in tqdm(missing.items(), desc=f"{self.teacher} encoder outputs", unit="clip"):
            path.parent.mkdir(parents=True, exist_ok=True)
            frames = teacher.encode(read_audio(utterance.audio, teacher.sample_rate)).astype(np.float16)
            partial = path.with_suffix(".tmp.npy")
            np.save(partial, frames)
            partial.replace(path)
        return len(missing)
