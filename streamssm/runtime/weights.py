"""How an exported ONNX file is stored: each weight once in a model folder, no debugging records.

A weight the exporter wrote that equals a tensor of the folder's model.safetensors (or its
transpose, in the safetensors' own dtype) becomes a reference into that file (ONNX external data:
file, offset, length: safetensors keeps each tensor's bytes contiguous) behind the Cast and
Transpose that rebuild the exporter's tensor; ONNX Runtime folds them when it loads the file. A
weight not found there but held exactly by float16 is stored as float16 behind a Cast. Either way
the session computes with the same float32 numbers; only the bytes on disk change. The
exporter's per-node records (the Python stack that made each node: most of a file's bytes once
the weights are out) are dropped.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np

from ..extras import require
from ..models import WEIGHTS_FILE

MIN_SIZE = 1024  # smaller weights stay as they are: the nodes would outweigh the bytes saved
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, np.float32).tobytes()).hexdigest()


class StoredWeights:
    """The tensors of a model.safetensors by content: digest of the float32 values (and of the
    transpose of a matrix) -> (dtype, shape, offset, length, transposed)."""

    def __init__(self, folder: Path):
        raw = (Path(folder) / WEIGHTS_FILE).read_bytes()
        (header_size,) = struct.unpack("<Q", raw[:8])
        header, start = json.loads(raw[8 : 8 + header_size]), 8 + header_size
        self.tensors = {}
        for name, info in header.items():
            if name == "__metadata__" or info["dtype"] not in SAFETENSORS_DTYPES:
                continue
            first, last = info["data_offsets"]
            dtype = SAFETENSORS_DTYPES[info["dtype"]]
            values = np.frombuffer(raw[start + first : start + last], dtype).reshape(info["shape"])
            where = (dtype, tuple(info["shape"]), start + first, last - first)
            self.tensors[_digest(values)] = (*where, False)
            if values.ndim == 2:
                self.tensors[_digest(values.T)] = (*where, True)

    def find(self, values: np.ndarray):
        return self.tensors.get(_digest(values))


def compact(path: Path, stored: StoredWeights) -> dict[str, int]:
    """Rewrite the ONNX file `path` (beside `stored`'s model.safetensors) with its float32 weights
    referenced or halved and its nodes' records dropped, as the module says; how many weights of each."""
    onnx = require("onnx")
    proto = onnx.load(str(path))
    graph, rebuilt, counts = proto.graph, [], {"referenced": 0, "float16": 0}
    for weight in graph.initializer:
        if weight.data_type != onnx.TensorProto.FLOAT or np.prod(weight.dims) < MIN_SIZE:
            continue
        values = onnx.numpy_helper.to_array(weight)
        name, found = weight.name, stored.find(values)
        if found:
            dtype, shape, offset, length, transposed = found
            weight.Clear()
            weight.name, weight.data_type = f"{name}.stored", onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            weight.dims.extend(shape)
            weight.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", WEIGHTS_FILE), ("offset", offset), ("length", length)):
                entry = weight.external_data.add()
                entry.key, entry.value = key, str(value)
            counts["referenced"] += 1
        elif np.array_equal(values.astype(np.float16).astype(np.float32), values):
            dtype, transposed = np.float16, False
            weight.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float16), f"{name}.stored"))
            counts["float16"] += 1
        else:
            continue
        rebuilt += _rebuild(onnx, weight.name, name, dtype != np.float32, transposed)
    nodes = [*rebuilt, *graph.node]
    for node in nodes:
        del node.metadata_props[:]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(proto, str(path))
    return counts


def _rebuild(onnx, stored: str, name: str, cast: bool, transposed: bool) -> list:
    """The nodes that turn the stored tensor `stored` into the exporter's float32 tensor `name`."""
    nodes, current = [], stored
    if cast:
        nodes.append(onnx.helper.make_node("Cast", [current], [f"{name}.float"], to=onnx.TensorProto.FLOAT))
        current = f"{name}.float"
    if transposed:
        nodes.append(onnx.helper.make_node("Transpose", [current], [f"{name}.transposed"], perm=[1, 0]))
        current = f"{name}.transposed"
    nodes.append(onnx.helper.make_node("Identity", [current], [name]))
    return nodes
