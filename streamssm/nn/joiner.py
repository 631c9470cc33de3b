"""The transducer's joiner: one encoder frame and one decoder output to vocabulary logits."""

from __future__ import annotations

import torch
from torch import nn


class Joiner(nn.Module):
    """Combines an encoder frame and a decoder output: tanh(W_e enc + W_d dec) -> vocabulary logits."""

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int):
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)

    def joint(self, encoder_projected, decoder_projected):
        """Logits from already projected inputs (broadcast against each other)."""
        return self.output(torch.tanh(encoder_projected + decoder_projected))

    def forward(self, encoded, decoded):
        """encoded (..., encoder_dim) and decoded (..., decoder_dim), broadcast: e.g. (b, T, 1, .)
        and (b, 1, U+1, .) give the lattice (b, T, U+1, V)."""
        return self.joint(self.encoder_proj(encoded), self.decoder_proj(decoded))
