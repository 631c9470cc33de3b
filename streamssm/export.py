"""python -m streamssm.export MODEL_FOLDER: write the ONNX files of a model's stateful functions
into its folder, for the ONNX Runtime backend (`StreamingRecognizer(..., backend="onnx")`).

    step.onnx          the chunk function (encoder and heads on log-mel frames) for one encoder frame
    chunk.onnx         the same for 2 to block_size encoder frames (one block of the scan)
    decoder_step.onnx  an ASR model's transducer decoder, one token  (runtime.graphs has the signatures)
    joiner.onnx        an ASR model's joiner: the best next token

Each file records the SHA-256 of the model.safetensors it came from; the runtime refuses files
whose weights have changed since (re-export after training). Exporting takes about a minute.
"""

from __future__ import annotations

import argparse
import sys

import torch

from .features import SUBSAMPLING
from .models import load_model, resolve_model_dir
from .runtime.graphs import (
    CHUNK,
    DECODER_STEP,
    JOINER,
    STEP,
    WEIGHTS_KEY,
    ChunkGraph,
    DecoderStepGraph,
    JoinerGraph,
    max_frames,
    weights_sha256,
)

OPSET = 23  # RMSNormalization is one node from opset 23
EXAMPLE_BATCH = 2  # not 1: the exporter would fix a dimension of size 1


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


def export(name_or_path) -> list:
    """Write the ONNX files of a model (a bundled name or a folder) into its folder; their paths."""
    folder = resolve_model_dir(name_or_path)
    model = load_model(folder).float()
    sha, written = weights_sha256(folder), []
    streams = torch.export.Dim("streams", min=1)
    batched = {0: streams}
    chunk = ChunkGraph(model).eval()
    state = chunk.layout.tensors()
    state_in, state_out = _state_names(state)
    with torch.no_grad():
        for name, most in ((STEP, 1), (CHUNK, max_frames(model))):
            frames = {0: streams}
            if most > 1:
                frames[1] = SUBSAMPLING * torch.export.Dim("frames", min=2, max=most)
            example = torch.zeros(EXAMPLE_BATCH, SUBSAMPLING * min(most, 2), model.config.encoder.n_mels)
            _export(
                chunk,
                (example, *_batch(state)),
                ["features", *state_in],
                [*chunk.output_names, *state_out],
                {"features": frames, "state": tuple(batched for _ in state)},
                folder / name,
                sha,
            )
            written.append(folder / name)
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
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a model folder (config.json, model.safetensors) or a bundled name")
    args = parser.parse_args(argv)
    for path in export(args.model):
        print(path)


if __name__ == "__main__":
    sys.exit(main())
