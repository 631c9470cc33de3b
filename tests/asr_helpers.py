"""Tiny ASR models and audio for the tests: a tokenizer trained on a few sentences, random models."""

import functools

import numpy as np
import torch

from streamssm.models import ASRConfig, ASRModel
from streamssm.nn.decoder import DecoderConfig
from streamssm.nn.encoder import EncoderConfig
from streamssm.tokenizer import Tokenizer

TEXTS = [
    "printing in the only sense with which we are at present concerned",
    "differs from most if not from all the arts and crafts represented in the exhibition",
    "in being comparatively modern",
    "for although the chinese took impressions from wood blocks engraved in relief",
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "we don't need no education we don't need no thought control",
    "seven silver swans swam silently seaward",
    "a journey of a thousand miles begins with a single step",
    "jack and jill went up the hill to fetch a pail of water",
    "how vexingly quick daft zebras jump",
    "the five boxing wizards jump quickly",
]


@functools.lru_cache(maxsize=None)
def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=48)


TINY_ENCODER = dict(d_model=32, n_layers=2, d_state=16, headdim=16, subsampling_channels=32, block_size=16)
# Whisper's shape in miniature: its stem, LayerNorm, an MLP per block, one B/C group per head
TINY_WHISPER_ENCODER = dict(TINY_ENCODER, expand=1, ngroups=2, mlp_ratio=2, norm="layer", stem="whisper")


def tiny_asr_model(seed: int = 0, blank_bias: float = 0.0, encoder=TINY_ENCODER, **options) -> ASRModel:
    """A random ASR model small enough for fast tests; `blank_bias` makes the joiner prefer blank;
    `encoder`: EncoderConfig fields."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = ASRConfig(
        tokenizer.vocab_size,
        encoder=EncoderConfig(**encoder),
        decoder=DecoderConfig(d_model=32, n_layers=2, d_state=16, headdim=16, block_size=16),
        joiner_dim=32,
        **options,
    )
    model = ASRModel(config, tokenizer).eval()
    with torch.no_grad():
        model.joiner.output.bias[0] += blank_bias
        model.ctc_head.bias[0] += blank_bias
    return model


def noise_bursts(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """Bursts of coloured noise (0.2-1 s) separated by silences (0.3-1.5 s)."""
    rng = np.random.default_rng(seed)
    pieces, total = [], 0
    while total < seconds * rate:
        burst = rng.standard_normal(int(rng.uniform(0.2, 1.0) * rate)).astype(np.float32)
        burst = np.convolve(burst, rng.standard_normal(8), mode="same").astype(np.float32) * 0.05
        pieces += [burst, np.zeros(int(rng.uniform(0.3, 1.5) * rate), np.float32)]
        total += sum(p.size for p in pieces[-2:])
    return np.concatenate(pieces)[: int(seconds * rate)]
