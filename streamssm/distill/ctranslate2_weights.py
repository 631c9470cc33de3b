"""Read a CTranslate2 `model.bin` into numpy arrays, without CTranslate2.

The file (binary version 6) is a header followed by named tensors:
    uint32 version, string model name, uint32 revision, uint32 count,
    count x (string name, uint8 rank, rank x uint32 dims, uint8 dtype, uint32 nbytes, data),
    uint32 alias count, alias count x (string alias, string name)
with strings as uint16 length (including a trailing NUL) + UTF-8 bytes, little-endian throughout.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

SUPPORTED_VERSION = 6
DTYPES = (
    np.float32,
    np.int8,
    np.int16,
    np.int32,
    np.float16,
    None,
)  # id order of CTranslate2's DataType; None: bfloat16


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self) -> str:
        length = self.unpack("H")
        text = self.data[self.offset : self.offset + length - 1].decode("utf-8")
        self.offset += length
        return text

    def take(self, nbytes: int) -> bytes:
        chunk = self.data[self.offset : self.offset + nbytes]
        if len(chunk) != nbytes:
            raise ValueError("model.bin ends inside a tensor: the file is truncated")
        self.offset += nbytes
        return chunk


def read_ctranslate2(path) -> dict[str, np.ndarray]:
    """Every tensor of a CTranslate2 model file by name (aliases included), as stored (fp16 stays fp16)."""
    reader = _Reader(Path(path).read_bytes())
    version = reader.unpack("I")
    if version != SUPPORTED_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version}; this reader knows version {SUPPORTED_VERSION}")
    reader.string()  # model name
    reader.unpack("I")  # revision
    tensors = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = [reader.unpack("I") for _ in range(reader.unpack("B"))]
        dtype_id, nbytes = reader.unpack("B"), reader.unpack("I")
        if dtype_id >= len(DTYPES) or DTYPES[dtype_id] is None:
            raise ValueError(f"{path}: tensor {name} has data type id {dtype_id}, which this reader does not read")
        tensors[name] = np.frombuffer(reader.take(nbytes), DTYPES[dtype_id]).reshape(shape)
    for _ in range(reader.unpack("I")):
        alias, name = reader.string(), reader.string()
        tensors[alias] = tensors[name]
    return tensors
