"""Seeded, on-the-fly augmentation of 16 kHz waveforms, and SpecAugment on features.

    augment = Augmenter(noise_dir="../shared/data/noise", seed=0)
    noisy = augment(waveform)          # same length as the input (unless p_speed > 0)

Each call draws, with its own probability: speed perturbation (resampling: tempo, pitch and
formants move together, and the length changes by 1/factor; off by default), pitch/vocal-tract
perturbation (resampling, then a WSOLA time stretch back to the input's length; off by default),
8 kHz telephone band, room reverberation from a generated impulse response, real background noise
at a random SNR, and a random gain. Some examples stay clean on purpose, so a model also sees
digital silence and studio-clean speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch

from ..audio import SAMPLE_RATE as SR, read_audio

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg")


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that speech power / noise power == snr_db (same length)."""
    speech_power = float(np.mean(speech.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise.astype(np.float64) ** 2)) + 1e-20
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return speech + (noise * scale).astype(speech.dtype)


def room_impulse_response(rng: np.random.Generator, rt60_s: float, direct_ratio_db: float) -> np.ndarray:
    """A synthetic room response: a direct path, then exponentially decaying noise (diffuse tail)."""
    length = int(rt60_s * SR)
    t = np.arange(length) / SR
    tail = rng.normal(size=length) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail[: int(0.002 * SR)] = 0.0  # the first reflections arrive after the direct sound
    tail *= np.sqrt(10 ** (-direct_ratio_db / 10) / (np.sum(tail**2) + 1e-20))
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(audio: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Convolve (FFT) and keep the input's length and level."""
    n = len(audio) + len(response) - 1
    size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), size)[: len(audio)]
    level = np.sqrt(np.mean(audio**2) / (np.mean(wet**2) + 1e-20))
    return (wet * level).astype(np.float32)


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Resample and play at 16 kHz: `factor` times faster, pitch and formants up by `factor`,
    length divided by `factor`."""
    return soxr.resample(audio, SR, int(SR / factor)).astype(np.float32) if factor != 1.0 else audio


def time_stretch(audio: np.ndarray, length: int, frame: int = 640, tolerance: int = 160) -> np.ndarray:
    """WSOLA: `audio` spread over `length` samples at its own pitch. Hann frames at 50 % overlap, each
    taken within +-`tolerance` samples of its nominal input position where it best continues the
    previous frame's waveform."""
    hop, window = frame // 2, np.hanning(frame + 1)[:frame].astype(np.float32)
    step = len(audio) / max(1, length)
    padded = np.pad(np.asarray(audio, np.float32), (tolerance, 2 * frame + tolerance + int(step * hop)))
    out = np.zeros(length + frame, np.float32)
    position = tolerance  # in `padded`
    for k in range(length // hop + 1):
        if k:
            target = tolerance + int(k * hop * step)
            continuation = padded[position + hop : position + hop + frame]
            region = padded[target - tolerance : target + tolerance + frame]
            position = target - tolerance + int(np.argmax(np.correlate(region, continuation, "valid")))
        out[k * hop : k * hop + frame] += window * padded[position : position + frame]
    return out[:length]


def shift_pitch(audio: np.ndarray, factor: float) -> np.ndarray:
    """Pitch and formants (vocal-tract length) up by `factor`, length kept."""
    return time_stretch(change_speed(audio, factor), len(audio)) if factor != 1.0 else audio


def telephone_band(audio: np.ndarray) -> np.ndarray:
    """Down to 8 kHz and back: what a phone line or an 8 kHz recording keeps."""
    narrow = soxr.resample(soxr.resample(audio, SR, 8000), 8000, SR).astype(np.float32)
    return np.pad(narrow, (0, max(0, len(audio) - len(narrow))))[: len(audio)]


@dataclass
class Augmenter:
    noise_dir: str | Path | None = None
    seed: int = 0
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (0.0, 30.0)
    p_reverb: float = 0.3
    rt60_s: tuple[float, float] = (0.15, 0.8)
    p_telephone: float = 0.2
    gain_db: tuple[float, float] = (-18.0, 6.0)
    p_speed: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)
    p_pitch: float = 0.0
    pitch_factor: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        files = (
            sorted(p for p in Path(self.noise_dir).rglob("*") if p.suffix in AUDIO_SUFFIXES) if self.noise_dir else []
        )
        if self.noise_dir and not files:
            raise FileNotFoundError(f"no noise recordings ({', '.join(AUDIO_SUFFIXES)}) under {self.noise_dir}")
        self.noises = [read_audio(p) for p in files]

    def reseed(self, seed) -> None:
        """Restart the random stream (e.g. per example, so batches do not depend on worker order)."""
        self.rng = np.random.default_rng(seed)

    def noise_segment(self, length: int) -> np.ndarray:
        noise = self.noises[self.rng.integers(len(self.noises))]
        if len(noise) < length:
            noise = np.tile(noise, length // len(noise) + 1)
        start = self.rng.integers(len(noise) - length + 1)
        return noise[start : start + length]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        rng, audio = self.rng, np.asarray(audio, np.float32)
        # the perturbations draw only when enabled, so the defaults give the same stream as before them
        if self.p_speed and rng.random() < self.p_speed:
            audio = change_speed(audio, rng.uniform(*self.speed))
        if self.p_pitch and rng.random() < self.p_pitch:
            audio = shift_pitch(audio, rng.uniform(*self.pitch_factor))
        if rng.random() < self.p_telephone:
            audio = telephone_band(audio)
        if rng.random() < self.p_reverb:
            audio = reverberate(audio, room_impulse_response(rng, rng.uniform(*self.rt60_s), rng.uniform(0, 12)))
        if self.noises and rng.random() < self.p_noise and np.any(audio):
            audio = mix_at_snr(audio, self.noise_segment(len(audio)), rng.uniform(*self.snr_db))
        audio = audio * 10 ** (rng.uniform(*self.gain_db) / 20)
        return np.clip(audio, -1.0, 1.0).astype(np.float32)


def spec_augment(
    features: torch.Tensor, rng: np.random.Generator, time_masks=2, time_width=10, freq_masks=2, freq_width=10
) -> torch.Tensor:
    """Zero random time and frequency bands of (T, n_mels) features (a copy; the input is kept)."""
    features = features.clone()
    frames, bins = features.shape
    for count, width, size, axis in ((time_masks, time_width, frames, 0), (freq_masks, freq_width, bins, 1)):
        for _ in range(count):
            w = int(rng.integers(0, width + 1))
            start = int(rng.integers(0, max(1, size - w)))
            features.narrow(axis, start, min(w, size - start)).zero_()
    return features
