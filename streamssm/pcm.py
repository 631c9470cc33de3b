"""Raw PCM bytes as arrays the engine takes: what the servers receive over the network.

`pcm_to_array` turns interleaved little-endian PCM of a given sample width into an array of shape
(frames, channels): int16 or int32 for integer samples, float32 for "f32le". Bytes that do not make
whole frames raise `ValueError` with a message a client can act on; the values themselves are
checked by `streamssm.audio.as_mono_float32` (NaN, Inf) when the chunk is fed.
"""

from __future__ import annotations

import numpy as np

FORMATS = {"s16le": 2, "f32le": 4}  # the WebSocket server's sample formats and their bytes per sample
INTEGER_WIDTHS = (1, 2, 3, 4)  # bytes per sample of integer PCM (8-bit is unsigned, as in WAV)


def pcm_to_array(data: bytes, width: int, channels: int = 1, *, floating: bool = False) -> np.ndarray:
    """(frames, channels) samples of `data`: signed little-endian integers of `width` bytes
    (8-bit unsigned), or float32 when `floating`. 8- and 24-bit samples are widened to int16/int32."""
    if floating and width != 4:
        raise ValueError(f"float PCM must have 4-byte samples, got {width}")
    if not floating and width not in INTEGER_WIDTHS:
        raise ValueError(f"PCM sample width must be one of {INTEGER_WIDTHS} bytes, got {width}")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"PCM channel count must be a positive integer, got {channels!r}")
    frame_bytes = width * channels
    if len(data) % frame_bytes:
        raise ValueError(f"{len(data)} bytes is not a whole number of {width}-byte samples x {channels} channel(s)")
    if floating:
        samples = np.frombuffer(data, "<f4").astype(np.float32)
    elif width == 1:
        samples = (np.frombuffer(data, np.uint8).astype(np.int16) - 128) << 8
    elif width == 3:
        triples = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.uint32)
        samples = (triples[:, 0] << 8 | triples[:, 1] << 16 | triples[:, 2] << 24).view(np.int32)
    else:
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(data, np.dtype(dtype).newbyteorder("<")).astype(dtype)
    return samples.reshape(-1, channels)
