"""python -m streamssm.export MODEL_FOLDER [--int8]: write the ONNX files of a model's stateful
functions into its folder, for the ONNX Runtime backend (`StreamingRecognizer(..., backend="onnx")`).

    chunk.onnx         the chunk function (encoder and heads on log-mel frames) for 1 to block_size
                       encoder frames (one block of the scan)
    decoder_step.onnx  an ASR model's transducer decoder, one token  (runtime.graphs has the signatures)
    joiner.onnx        an ASR model's joiner: the best next token

The files hold their weights by reference into model.safetensors where the exporter's tensor is
one of its tensors (the weights are on disk once), or in float16 where that is exact
(runtime/weights.py); ONNX Runtime computes with the same float32 numbers. The shipped models' float
graphs take 0.1 (kws) and 0.3 MB (asr) beside their weights.

With --int8, also each file's int8 version (chunk.int8.onnx, ...) for `backend="onnx-int8"`: every
linear layer becomes ONNX Runtime's MatMulNBits with 8-bit weights (one scale per INT8_BLOCK inputs
of an output) that multiplies in int8, each row of activations quantised on its own, so a stream's
results do not depend on the other streams of its batch. Its accuracy change: benchmarks/int8.md.

Each file records the SHA-256 of the model.safetensors it came from; the runtime refuses files
whose weights have changed since (re-export after training). Exporting takes about a minute.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from .extras import MissingPiece, require
from .features import SUBSAMPLING
from .models import load_model, resolve_model_dir
from .runtime.weights import StoredWeights, compact
from .runtime.graphs import (
    CHUNK,
    DECODER_STEP,
    JOINER,
    WEIGHTS_KEY,
    ChunkGraph,
    DecoderStepGraph,
    JoinerGraph,
    graph_files,
    int8_file,
    max_frames,
    weights_sha256,
)

OPSET = 23  # RMSNormalization is one node from opset 23
INT8_BLOCK = 32  # weights per int8 scale (against 128 and quantize_dynamic's scales: benchmarks/int8.md)
INT8_PRODUCTS = 4  # MatMulNBits' accuracy_level 4: activations quantised to int8 per row and block
EXAMPLE_BATCH = 2  # not 1: the exporter would fix a dimension of size 1
EXAMPLE_FRAMES = 2  # encoder frames of the example chunk, likewise


def _batch(tensors):
    return tuple(t.expand(EXAMPLE_BATCH, *t.shape[1:]).contiguous() for t in tensors)


def _export(graph, args: tuple, names: list[str], outputs: list[str], dynamic_shapes, path, sha: str):
    program = torch.onnx.export(
        graph,
        args,
        dynamo=True,
        opset_version=OPSET,
        verbose=False,
        input_names=names,
        output_names=outputs,
        dynamic_shapes=dynamic_shapes,
    )
    program.model.metadata_props[WEIGHTS_KEY] = sha
    program.save(str(path), external_data=False)


def _state_names(state, prefix="state"):
    return [f"{prefix}.{i}" for i in range(len(state))], [f"new_{prefix}.{i}" for i in range(len(state))]


def _nbits_quantizer():
    """ONNX Runtime's MatMulNBitsQuantizer, leaving the root logger as it was (importing the
    module configures it to print everything at INFO)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    module = require("onnxruntime.quantization.matmul_nbits_quantizer")
    root.handlers[:] = handlers
    root.setLevel(level)
    return module.MatMulNBitsQuantizer


def quantize(path: Path) -> Path:
    """Write the int8 version of an exported file beside it (the weights' SHA-256 carries over)."""
    quantizer = _nbits_quantizer()(
        str(path), bits=8, block_size=INT8_BLOCK, is_symmetric=True, accuracy_level=INT8_PRODUCTS
    )
    quantizer.model.replace_gemm_with_matmul()  # the step graphs' linear layers are Gemm nodes
    quantizer.process()
    target = path.with_name(int8_file(path.name))
    quantizer.model.save_model_to_file(str(target))
    return target


def export(name_or_path, int8: bool = False) -> list:
    """Write the ONNX files of a model (a bundled name or a folder) into its folder, and with `int8`
    their int8 versions; their paths."""
    require("onnxscript")  # torch.onnx's exporter
    folder = resolve_model_dir(name_or_path)
    model = load_model(folder).float()
    sha, written = weights_sha256(folder), []
    streams = torch.export.Dim("streams", min=1)
    batched = {0: streams}
    chunk = ChunkGraph(model).eval()
    state = chunk.layout.tensors()
    state_in, state_out = _state_names(state)
    with torch.no_grad():
        frames = {0: streams, 1: SUBSAMPLING * torch.export.Dim("frames", min=1, max=max_frames(model))}
        example = torch.zeros(EXAMPLE_BATCH, SUBSAMPLING * EXAMPLE_FRAMES, model.config.encoder.n_mels)
        _export(
            chunk,
            (example, *_batch(state)),
            ["features", *state_in],
            [*chunk.output_names, *state_out],
            {"features": frames, "state": tuple(batched for _ in state)},
            folder / CHUNK,
            sha,
        )
        written.append(folder / CHUNK)
        if model.kind == "asr":
            step = DecoderStepGraph(model).eval()
            state = step.layout.tensors()
            state_in, state_out = _state_names(state)
            tokens = torch.zeros(EXAMPLE_BATCH, dtype=torch.long)
            _export(
                step,
                (tokens, *_batch(state)),
                ["tokens", *state_in],
                ["predicted", *state_out],
                {"tokens": batched, "state": tuple(batched for _ in state)},
                folder / DECODER_STEP,
                sha,
            )
            projected = torch.zeros(EXAMPLE_BATCH, model.config.joiner_dim)
            _export(
                JoinerGraph(model).eval(),
                (projected, projected.clone()),
                ["encoder", "predicted"],
                ["log_probability", "token"],
                {"encoder_projected": batched, "decoder_projected": batched},
                folder / JOINER,
                sha,
            )
            written += [folder / DECODER_STEP, folder / JOINER]
    if int8:  # from the float32 files: the quantizer finds no weights behind a cast
        written += [quantize(folder / name) for name in graph_files(model)]
    stored = StoredWeights(folder)
    for path in written:
        compact(path, stored)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a model folder (config.json, model.safetensors) or a bundled name")
    parser.add_argument("--int8", action="store_true", help="also write the int8 files (backend onnx-int8)")
    args = parser.parse_args(argv)
    try:
        written = export(args.model, args.int8)
    except MissingPiece as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)


if __name__ == "__main__":
    sys.exit(main())
