"""The functions a model exports, as torch modules with flat tensor inputs and outputs (every
state an input and an output), so that `torch.onnx.export` writes them and PyTorch runs the same.

    chunk:        features (b, 4T, n_mels), *encoder state -> *per-frame outputs (b, T, .), *new state
    decoder_step: tokens (b,), *decoder state -> predicted (b, J), *new state        (transducer)
    joiner:       encoder (b, J), predicted (b, J) -> log-probability (b,), token (b,) of the best token

The chunk function is exported once, chunk.onnx for 1 <= T <= max_frames (one block of the scan):
for one frame it cost what a recurrence-form graph did (kws 0.41 vs 0.40 ms, asr 1.81 vs 1.75 ms
in the step/chunk table of benchmarks/speed.md before that graph was dropped), so a second copy of
the weights was not worth its size.

The per-frame outputs are what a decoding consumes (`heads`): a KWS model's "logits"; an ASR
model's "transducer" (the joiner's encoder projection) and "ctc" (log-probabilities).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from ..decoding.ctc import CTCGreedySearch
from ..decoding.transducer import GreedyTransducerSearch, TransducerNet
from ..models import WEIGHTS_FILE

CHUNK = "chunk.onnx"  # the chunk function for 1 to `max_frames` encoder frames
DECODER_STEP, JOINER = "decoder_step.onnx", "joiner.onnx"  # a transducer's
WEIGHTS_KEY = "streamssm.weights_sha256"  # metadata of each file: the weights it was exported from
INT8 = ".int8"  # chunk.int8.onnx, ...: a file's int8 version (`python -m streamssm.export --int8`)


def weights_sha256(folder: Path) -> str:
    return hashlib.sha256((Path(folder) / WEIGHTS_FILE).read_bytes()).hexdigest()


def graph_files(model) -> tuple[str, ...]:
    """The files `python -m streamssm.export` writes for `model`."""
    return (CHUNK, DECODER_STEP, JOINER) if model.kind == "asr" else (CHUNK,)


def int8_file(name: str) -> str:
    """The file of a graph's int8 version: chunk.onnx -> chunk.int8.onnx."""
    stem, suffix = name.rsplit(".", 1)
    return f"{stem}{INT8}.{suffix}"


def max_frames(model) -> int:
    """Encoder frames per call of chunk.onnx at most: one block of the SSD scan."""
    return model.config.encoder.block_size


def heads(model) -> dict:
    """The per-frame outputs of a model's chunk function: name -> function of the encoder output."""
    if model.kind == "kws":
        return {"logits": model.head}
    return {
        "transducer": GreedyTransducerSearch(model.decoder, model.joiner).prepare,
        "ctc": CTCGreedySearch(model.ctc_head).prepare,
    }


class ChunkGraph(nn.Module):
    """The stateful chunk function of a model: encoder and heads."""

    def __init__(self, model):
        super().__init__()
        self.model = model  # registered, so that export lifts the weights the heads use
        self.heads = heads(model)
        self.layout = model.initial_state(1)  # how the flat state tensors make an EncoderState

    @property
    def output_names(self) -> list[str]:
        return list(self.heads)

    def forward(self, features, *state):
        encoded, new_state = self.model.encoder(features, self.layout._rebuild(state))
        return (*(head(encoded) for head in self.heads.values()), *new_state.tensors())


class DecoderStepGraph(nn.Module):
    """One token through a transducer's decoder, projected for the joiner (`TransducerNet.advance`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.net = TransducerNet(model.decoder, model.joiner)
        self.layout = model.decoder.initial_state(1)

    def forward(self, tokens, *state):
        advanced = self.net.advance(tokens, self.layout._rebuild(state))
        return (advanced.predicted, *advanced.decoder.tensors())


class JoinerGraph(nn.Module):
    """The best next token of each row and its log-probability (`TransducerNet.best`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.net = TransducerNet(model.decoder, model.joiner)

    def forward(self, encoder_projected, decoder_projected):
        return self.net.best(encoder_projected, decoder_projected)
