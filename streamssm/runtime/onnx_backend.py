"""A model's functions run by ONNX Runtime from the files `python -m streamssm.export` wrote.

The streams' front ends return the samples of each frame; their log-mel is computed for the whole
batch at once with a float32 FFT (features.frames_log_mel). Streams with the same number of new
encoder frames run as one batch through chunk.onnx, in pieces of at most `max_frames` frames (two
one-frame calls cost more than one call of two frames, for both shipped models: the step/chunk
table of benchmarks/speed.py). A transducer's search
gets the decoder step and joiner from decoder_step.onnx and joiner.onnx (OnnxTransducerNet). States
stay torch tensors sharing memory with numpy, so the recognizer stacks and splits them as it does
for the PyTorch backend. With `int8`, the same runs on the files' int8 versions (chunk.int8.onnx, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..decoding.transducer import TransducerSearchState
from ..extras import require
from ..features import SUBSAMPLING, frames_log_mel, sample_frames
from ..models import WEIGHTS_FILE
from ..nn.state import BatchedState
from . import ONNX, ONNX_INT8
from .graphs import (
    CHUNK,
    DECODER_STEP,
    JOINER,
    WEIGHTS_KEY,
    graph_files,
    int8_file,
    max_frames,
    weights_sha256,
)


class Sessions:
    """The ONNX Runtime sessions of a model folder's files (or their int8 versions), checked
    against its weights; keyed by the float file's name."""

    def __init__(self, model, folder, threads: int | None, int8: bool = False):
        ort = require("onnxruntime")
        self.folder = Path(folder)
        files = {name: int8_file(name) if int8 else name for name in graph_files(model)}
        command = f"python -m streamssm.export {self.folder}{' --int8' if int8 else ''}"
        missing = [file for file in files.values() if not (self.folder / file).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.folder} has no {', '.join(missing)}; export them: {command}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        sha, self.sessions, self.input_names = weights_sha256(self.folder), {}, {}
        for name, file in files.items():
            try:
                session = ort.InferenceSession(str(self.folder / file), options, providers=["CPUExecutionProvider"])
            except Exception as error:  # onnxruntime's errors derive from Exception alone
                raise RuntimeError(
                    f"{self.folder / file} does not load ({error}); if {WEIGHTS_FILE} changed since the "
                    f"export, re-export: {command}"
                ) from error
            if session.get_modelmeta().custom_metadata_map.get(WEIGHTS_KEY) != sha:
                raise RuntimeError(
                    f"{self.folder / file} was exported from other weights than "
                    f"{self.folder}/model.safetensors; re-export: {command}"
                )
            self.sessions[name] = session
            self.input_names[name] = [i.name for i in session.get_inputs()]

    def run(self, name: str, inputs: list[np.ndarray]) -> list[torch.Tensor]:
        feeds = dict(zip(self.input_names[name], inputs))
        return [torch.from_numpy(x) for x in self.sessions[name].run(None, feeds)]


class OnnxTransducerNet:
    """TransducerNet (decoding.transducer) on decoder_step.onnx and joiner.onnx."""

    def __init__(self, sessions: Sessions, model):
        self.sessions, self.initial = sessions, model.decoder.initial_state(1)

    def start(self, batch_size: int, blank: int) -> TransducerSearchState:
        blanks = torch.full((batch_size,), blank, dtype=torch.long)
        return self.advance(blanks, BatchedState.stack([self.initial] * batch_size))

    def advance(self, tokens, state) -> TransducerSearchState:
        predicted, *tensors = self.sessions.run(DECODER_STEP, [tokens.numpy(), *(t.numpy() for t in state.tensors())])
        return TransducerSearchState(state._rebuild(tensors), predicted)

    def best(self, encoder_projected, decoder_projected):
        return self.sessions.run(JOINER, [np.ascontiguousarray(encoder_projected.numpy()), decoder_projected.numpy()])


class OnnxBackend:
    """`backend(frames, state, lengths) -> (outputs, state)` as runtime.TorchBackend, on ONNX Runtime."""

    analysis = staticmethod(sample_frames)

    def __init__(self, model, folder, head: str, threads: int | None = 1, int8: bool = False):
        self.name = ONNX_INT8 if int8 else ONNX
        self.sessions = Sessions(model, folder, threads, int8)
        self.folder = self.sessions.folder
        outputs = [o.name for o in self.sessions.sessions[CHUNK].get_outputs()]
        if head not in outputs:
            raise ValueError(f"{self.folder / CHUNK} has no output {head!r} (its outputs: {outputs})")
        self.output = outputs.index(head)
        self.n_outputs = len(outputs) - len(model.initial_state(1).tensors())
        self.model, self.max_frames = model, max_frames(model)

    def attach(self, decoding):
        """Give a transducer search the decoder step and joiner of the exported files."""
        if getattr(decoding, "head", None) == "transducer":
            decoding.search.net = OnnxTransducerNet(self.sessions, self.model)

    def initial_state(self) -> BatchedState:
        return self.model.initial_state(1)

    def _run(self, features: torch.Tensor, state: BatchedState):
        """Features of streams that all have features.shape[1] // 4 new encoder frames."""
        n, outputs = features.shape[1] // SUBSAMPLING, []
        for start in range(0, n, self.max_frames):
            piece = features[:, start * SUBSAMPLING : (start + self.max_frames) * SUBSAMPLING]
            result = self.sessions.run(
                CHUNK, [np.ascontiguousarray(piece.numpy()), *(t.numpy() for t in state.tensors())]
            )
            outputs.append(result[self.output])
            state = state._rebuild(result[self.n_outputs :])
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1), state

    def __call__(self, frames: torch.Tensor, state: BatchedState, lengths: torch.Tensor):
        """frames (b, 4T, win_length) padded, state of b streams, lengths (b,) in encoder frames."""
        frames = frames_log_mel(frames.cpu(), self.model.config.features, torch.float32)
        groups = lengths if len(lengths) == 1 else lengths.unique()
        if len(groups) == 1:
            return self._run(frames[:, : int(groups[0]) * SUBSAMPLING], state)
        outputs, parts, order = None, [], []
        for n in groups.tolist():
            rows = (lengths == n).nonzero()[:, 0]
            out, part = self._run(frames[rows, : n * SUBSAMPLING], state.select(rows))
            if outputs is None:
                outputs = out.new_zeros(len(lengths), int(lengths.max()), out.shape[2])
            outputs[rows, :n] = out
            parts.append(part)
            order.append(rows)
        return outputs, BatchedState.stack(parts).select(torch.cat(order).argsort())
