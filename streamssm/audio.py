"""Audio input: chunk validation, streaming resampling and file reading.

Every chunk that enters the engine passes through `as_mono_float32`, and every sample rate through
`check_sample_rate`, so bad input fails early with a message that says what was wrong.
Resampling is done by soxr in streaming mode; files are read through the same resampler, so a file
read offline and the same audio fed as a stream give the same samples.
"""

from __future__ import annotations

import numbers
import sys
from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16000  # Hz: what the models take, and the default rate of every resampling

_INT_SCALES = {np.dtype(np.int16): 1.0 / 32768, np.dtype(np.int32): 1.0 / 2**31}
_ACCEPTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), *_INT_SCALES)
_ACCEPTED = "float32/float64 in [-1, 1], int16 or int32"
FLOAT_PEAK_LIMIT = 4.0  # float samples beyond this are not audio in [-1, 1] (int16 values as floats, say)
MAX_CHANNELS = 64  # a second dimension larger than this is a (channels, frames) array, not channels


def as_mono_float32(chunk, *, downmix: bool = False) -> np.ndarray:
    """Return `chunk` as 1-D float32 samples in [-1, 1].

    `chunk` is a numpy array or torch tensor (any device): 1-D (mono) or 2-D (frames, channels).
    Floats are taken as they are, int16 is scaled by 1/32768 and int32 by 1/2**31. Several channels
    are averaged only when `downmix=True`; otherwise they raise `ValueError`. Other dtypes or shapes
    raise `TypeError`/`ValueError`, and so do NaN or Inf, float samples beyond +-FLOAT_PEAK_LIMIT
    and a (channels, frames) array. A contiguous float32 1-D chunk is returned as it is, without
    a copy.
    """
    torch = sys.modules.get("torch")  # not imported here: a tensor exists only once torch is
    if torch is not None and isinstance(chunk, torch.Tensor):
        if chunk.dtype not in (torch.float32, torch.float64, torch.int16, torch.int32):
            raise TypeError(f"audio chunk has dtype {chunk.dtype}; accepted: {_ACCEPTED}")
        chunk = chunk.detach().cpu().numpy()
    elif not isinstance(chunk, np.ndarray):
        raise TypeError(f"audio chunk is a {type(chunk).__name__}; pass a numpy array or torch tensor")
    if chunk.dtype not in _ACCEPTED_DTYPES:
        raise TypeError(f"audio chunk has dtype {chunk.dtype}; accepted: {_ACCEPTED}")
    if chunk.ndim not in (1, 2) or (chunk.ndim == 2 and chunk.shape[1] == 0):
        raise ValueError(f"audio chunk has shape {chunk.shape}; expected (frames,) or (frames, channels)")
    if chunk.ndim == 2 and chunk.shape[1] > MAX_CHANNELS:
        raise ValueError(
            f"audio chunk has shape {chunk.shape}, which reads as {chunk.shape[1]} channels; pass "
            "(frames, channels), e.g. chunk.T for a (channels, frames) array"
        )
    if chunk.ndim == 2 and chunk.shape[1] != 1 and not downmix:
        raise ValueError(
            f"audio chunk has {chunk.shape[1]} channels; pass mono audio, or downmix=True to average the channels"
        )

    scale = _INT_SCALES.get(chunk.dtype)
    samples = chunk.astype(np.float32, copy=False)
    if scale is not None:
        samples = samples * np.float32(scale)
    if samples.ndim == 2:
        samples = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    if scale is None and samples.size:
        peak = float(np.abs(samples).max())  # NaN if any sample is NaN
        if not np.isfinite(peak):
            raise ValueError("audio chunk contains NaN or Inf samples")
        if peak > FLOAT_PEAK_LIMIT:
            raise ValueError(
                f"float audio reaches {peak:g}; float samples must be in [-1, 1] (int16 values "
                "stored as floats: divide by 32768, or pass the int16 array)"
            )
    return np.ascontiguousarray(samples)


def check_sample_rate(sample_rate) -> int:
    """Return `sample_rate` as a positive int; an int or integral float is accepted."""
    is_number = isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool)
    if is_number and sample_rate > 0 and float(sample_rate).is_integer():
        return int(sample_rate)
    raise ValueError(f"sample rate must be a positive integer in Hz, got {sample_rate!r}")


class StreamingResampler:
    """Mono float32 resampling of a stream in chunks of any size (soxr, high quality).

    The concatenated outputs of `process` and the final `flush` do not depend on how the input was
    chunked. With equal rates the input is passed through without a copy.
    """

    def __init__(self, in_rate, out_rate=SAMPLE_RATE):
        self.in_rate = check_sample_rate(in_rate)
        self.out_rate = check_sample_rate(out_rate)
        self._soxr = None
        if self.in_rate != self.out_rate:
            self._soxr = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32")

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next 1-D float32 chunk; returns the output samples ready so far."""
        if self._soxr is None:
            return samples
        return self._soxr.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        """End the input and return the samples still held back by the filter."""
        if self._soxr is None:
            return np.zeros(0, np.float32)
        return self._soxr.resample_chunk(np.zeros(0, np.float32), last=True)


def open_audio(path) -> soundfile.SoundFile:
    """A sound file opened for reading; FileNotFoundError or OSError naming it if it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        return soundfile.SoundFile(path)
    except soundfile.SoundFileError as err:
        raise OSError(f"cannot read audio file {path}: {err}") from err


def read_audio(path, sample_rate=SAMPLE_RATE) -> np.ndarray:
    """Read any file soundfile can open as mono float32 at `sample_rate` (channels averaged)."""
    with open_audio(path) as sound:
        samples, file_rate = sound.read(dtype="float32", always_2d=True), sound.samplerate
    resampler = StreamingResampler(file_rate, sample_rate)
    mono = as_mono_float32(samples, downmix=True)
    return np.concatenate([resampler.process(mono), resampler.flush()])


def loud_span(audio: np.ndarray, below_peak_db: float, frame: int = 160) -> tuple[int, int]:
    """First and last sample of the `frame`-sample frames (10 ms at 16 kHz) whose power is within
    `below_peak_db` of the loudest frame: where the speech of a clip is. (0, len) if it is shorter
    than a frame."""
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    if len(frames) == 0:
        return 0, len(audio)
    level = 10 * np.log10((frames.astype(np.float64) ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(level >= level.max() - below_peak_db)
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)
