"""The sentencepiece tokenizer of ASR models (on `text.normalize_text`'s words).

    tokenizer = Tokenizer.train(texts, vocab_size=256)   # unigram (or "bpe") on normalised texts
    ids = tokenizer.encode("Hello, world!")              # [..] ids of "hello world"
    tokenizer.decode(ids)                                # "hello world"
    tokenizer.save(folder / "tokenizer.model")

Id 0 is the blank of CTC and the transducer (and the decoder's start symbol); id 1 is <unk>.
Neither ever comes out of `encode`.
"""

from __future__ import annotations

import io
from pathlib import Path

import sentencepiece
import torch

from .text import normalize_text

BLANK_ID = 0
UNK_ID = 1
TOKENIZER_FILE = "tokenizer.model"
WORD_START = "\u2581"  # sentencepiece's word-boundary mark


class Tokenizer:
    """A sentencepiece model over normalised text, with id 0 as the blank."""

    def __init__(self, model_proto: bytes):
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        if self.processor.id_to_piece(BLANK_ID) != "<blk>":
            raise ValueError("not a streamssm tokenizer: id 0 must be the blank '<blk>'")
        self.model_proto = model_proto
        self.starts_word = [self.processor.id_to_piece(i).startswith(WORD_START) for i in range(self.vocab_size)]

    @classmethod
    def train(cls, texts, vocab_size: int = 256, model_type: str = "unigram") -> "Tokenizer":
        """Train on `texts` (normalised first). With little text the vocabulary may come out smaller."""
        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}")
        sentences = [t for t in map(normalize_text, texts) if t]
        if not sentences:
            raise ValueError("no text to train the tokenizer on (every text is empty after normalisation)")
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            normalization_rule_name="identity",
            hard_vocab_limit=False,
            pad_id=BLANK_ID,
            pad_piece="<blk>",
            unk_id=UNK_ID,
            bos_id=-1,
            eos_id=-1,
            num_threads=1,
            minloglevel=2,
        )
        return cls(model.getvalue())

    @classmethod
    def load(cls, path) -> "Tokenizer":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer at {path}")
        return cls(path.read_bytes())

    def save(self, path) -> Path:
        """Write the model; the file is replaced only once fully written."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.model_proto)
        tmp.replace(path)
        return path

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.processor.encode(normalize_text(text))

    def encode_batch(self, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ids (b, U_max), padded with the blank, and their lengths (b,)."""
        ids = [torch.tensor(self.encode(t), dtype=torch.long) for t in texts]
        lengths = torch.tensor([len(i) for i in ids], dtype=torch.long)
        return torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=BLANK_ID), lengths

    def decode(self, ids) -> str:
        """The text of `ids`; blanks and <unk> leave no trace."""
        return self.processor.decode([int(i) for i in ids if int(i) > UNK_ID])
