"""Audio chunk sources: a live microphone (PortAudio via sounddevice), sound files and arrays.

All yield ``(chunk, sample_rate)`` pairs, so the same streaming code (``stream.run(source)``)
runs on a microphone, on a recording (``--input FILE``) and on audio in memory.
"""

import queue
import time

import numpy as np

from .audio import open_audio
from .extras import MissingPiece, require

_DEVICE_HELP = (
    "Check the input devices with --list-devices and choose one with --device, "
    "or run the same path on a recording with --input FILE."
)


class MicrophoneUnavailable(RuntimeError):
    """No microphone can be opened; the message says why and what to do about it."""


def _sounddevice():
    """Import sounddevice, turning a missing sounddevice or PortAudio into MicrophoneUnavailable."""
    try:
        sounddevice = require("sounddevice")
    except MissingPiece as error:
        raise MicrophoneUnavailable(f"{error}; or run the same path on a recording with --input FILE") from error
    except OSError as error:
        raise MicrophoneUnavailable(
            f"The microphone cannot be used because the PortAudio library is missing ({error}). "
            "Install the Debian package libportaudio2 (apt-get install libportaudio2), "
            "or run the same path on a recording with --input FILE."
        ) from error
    return sounddevice


def _input_device_info(sd, device) -> dict:
    """sounddevice's description of ``device`` (None: the default input device)."""
    try:
        return sd.query_devices(device, kind="input")
    except ValueError as error:  # a name that matches no input device
        raise MicrophoneUnavailable(f"{error}. {_DEVICE_HELP}") from error
    except sd.PortAudioError as error:
        if device is None:
            what = "No input device is available"
        else:
            what = f"Input device {device!r} is unavailable"
        raise MicrophoneUnavailable(f"{what} (PortAudio: {error}). {_DEVICE_HELP}") from error


def _block_frames(sample_rate: int, block_ms: float) -> int:
    return max(1, round(sample_rate * block_ms / 1000))


class MicrophoneSource:
    """Live chunks from an input device.

    ``with MicrophoneSource() as mic: for chunk, rate in mic: ...`` records ``block_ms`` blocks
    of float32 mono audio (channels are averaged) at ``sample_rate`` (None: the device's
    default rate). Blocks the consumer did not keep up with are dropped by PortAudio and
    counted in ``overflows``; recording goes on. ``close()`` (from any thread) stops the
    stream and ends the iteration once the blocks already recorded have been yielded.
    """

    def __init__(self, device=None, sample_rate=None, block_ms=40, channels=1):
        sd = _sounddevice()
        info = _input_device_info(sd, device)
        self.device_name = info["name"]
        self.sample_rate = int(sample_rate or info["default_samplerate"])
        self.block_frames = _block_frames(self.sample_rate, block_ms)
        self.overflows = 0
        self._blocks = queue.Queue()
        self._closed = False
        try:
            self._stream = sd.InputStream(
                device=info["index"],
                samplerate=self.sample_rate,
                blocksize=self.block_frames,
                channels=channels,
                dtype="float32",
                callback=self._on_block,
            )
        except sd.PortAudioError as error:
            raise MicrophoneUnavailable(
                f"Input device {self.device_name!r} cannot record {channels} channel(s) at "
                f"{self.sample_rate} Hz (PortAudio: {error}). {_DEVICE_HELP}"
            ) from error

    def _on_block(self, indata, frames, time_info, status):
        if status.input_overflow:
            self.overflows += 1
        self._blocks.put(indata.mean(axis=1, dtype=np.float32))

    def start(self):
        """Start recording (done by ``with`` and by iterating)."""
        if not self._closed and not self._stream.active:
            self._stream.start()

    def close(self):
        """Stop recording and release the device; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stream.stop()
        self._stream.close()
        self._blocks.put(None)

    def __iter__(self):
        self.start()
        while (block := self._blocks.get()) is not None:
            yield block, self.sample_rate

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.close()


def file_chunks(path, block_ms=40, realtime=False):
    """``(chunk, sample_rate)`` pairs of a sound file at its own rate, channels averaged.

    The file is opened at once (an unreadable one raises OSError naming it). With
    ``realtime=True`` each chunk comes when its last sample would have been recorded by a live
    microphone, paced against a monotonic clock so delays do not add up.
    """
    return _file_blocks(open_audio(path), block_ms, realtime)


def _file_blocks(sound, block_ms, realtime):
    with sound:
        rate = sound.samplerate
        frames_done = 0
        started = time.monotonic()
        for block in sound.blocks(_block_frames(rate, block_ms), dtype="float32", always_2d=True):
            frames_done += len(block)
            if realtime:
                time.sleep(max(0.0, started + frames_done / rate - time.monotonic()))
            yield block.mean(axis=1, dtype=np.float32), rate


def array_chunks(audio, sample_rate: int, chunk_samples: int):
    """``(chunk, sample_rate)`` pairs of `audio` cut every `chunk_samples` samples (the last shorter)."""
    return ((audio[start : start + chunk_samples], sample_rate) for start in range(0, len(audio), chunk_samples))


def list_input_devices() -> str:
    """A table of the input devices PortAudio sees; ``*`` marks the default one."""
    sd = _sounddevice()
    apis = sd.query_hostapis()
    inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    if not inputs:
        return "No input devices found. Run the same path on a recording with --input FILE."
    default = sd.default.device[0]
    rows = [("", "index", "name", "host API", "channels", "default rate")]
    rows += [
        (
            "*" if d["index"] == default else "",
            str(d["index"]),
            d["name"],
            apis[d["hostapi"]]["name"],
            str(d["max_input_channels"]),
            f"{d['default_samplerate']:.0f} Hz",
        )
        for d in inputs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
