"""Runtimes of a model's chunk function (log-mel frames -> encoder -> heads), chosen per recognizer:

    "torch"  PyTorch, the reference (each stream's front end computes log-mel with a float64 FFT)
    "onnx"   ONNX Runtime on the files of `python -m streamssm.export MODEL_FOLDER` (CPU); log-mel
             with a float32 FFT over the whole batch of streams, then the exported graph
    "onnx-int8"  the same on the int8 files of `python -m streamssm.export MODEL_FOLDER --int8`
             (linear layers with 8-bit weights, multiplying in int8); only when named: its
             accuracy change is measured in benchmarks/int8.md

A backend is called as `backend(frames, state, lengths) -> (outputs (b, T, .), new state)` on the
padded frames of a batch of streams; `backend.analysis` is what each stream's FrontEnd returns
(log-mel frames or the frames' samples). With no backend named, the ONNX one is taken when
onnxruntime imports and the model folder has up-to-date files (on one thread it cost 3-5x less
per chunk than PyTorch here: benchmarks/speed.py), the PyTorch one otherwise.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..features import log_mel
from .graphs import graph_files, heads

BACKENDS = ("torch", "onnx", "onnx-int8")
TORCH, ONNX, ONNX_INT8 = BACKENDS


class TorchBackend:
    name = TORCH
    analysis = staticmethod(log_mel)

    def __init__(self, model, head: str):
        self.model, self.head = model, heads(model)[head]

    def attach(self, decoding):
        """Nothing to give the decoding: it runs the model's own modules."""

    def initial_state(self):
        return self.model.initial_state(1)

    def __call__(self, features, state, lengths):
        encoded, state = self.model.encoder(features, state, lengths if len(lengths) > 1 else None)
        return self.head(encoded), state


def create_backend(name: str | None, model, folder, head: str, device, threads: int | None = 1):
    """The backend `name` (one of BACKENDS, None: the fastest available but never int8) for `model`
    from `folder`."""
    if name not in (*BACKENDS, None):
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {name!r}")
    if name is None:
        if device.type != "cpu" or folder is None or not all((Path(folder) / f).is_file() for f in graph_files(model)):
            return TorchBackend(model, head)
        try:
            return _onnx(model, folder, head, threads)
        except ImportError:  # onnxruntime is not installed
            return TorchBackend(model, head)
        except RuntimeError as err:  # files of older weights: say so, and run the reference
            warnings.warn(f"{err}; using the torch backend", stacklevel=3)
            return TorchBackend(model, head)
    if name == TORCH:
        return TorchBackend(model, head)
    if device.type != "cpu":
        raise ValueError(f"the {name} backend runs on the CPU, not {device}")
    if folder is None:
        raise ValueError(f"the {name} backend needs the model folder with the exported files (from_pretrained)")
    return _onnx(model, folder, head, threads, int8=name == ONNX_INT8)


def _onnx(model, folder, head, threads, int8=False):
    from .onnx_backend import OnnxBackend

    return OnnxBackend(model, folder, head, threads, int8)
