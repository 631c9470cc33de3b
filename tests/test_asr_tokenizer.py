"""Text normaliser and sentencepiece tokenizer: round trips, blank and <unk> handling, save/load, errors."""

import io

import pytest
import sentencepiece

from streamssm.tokenizer import BLANK_ID, UNK_ID, Tokenizer, normalize_text
from asr_helpers import TEXTS, tiny_tokenizer


def test_normaliser_keeps_lowercase_words_and_inner_apostrophes():
    assert (
        normalize_text("  Hello, WORLD!  It's 'quoted' -- well-known café\u2019s\n")
        == "hello world it's quoted well known cafe's"
    )
    assert normalize_text("42 ... !!") == ""


def test_encode_decode_round_trip():
    tokenizer = tiny_tokenizer()
    assert 30 <= tokenizer.vocab_size <= 48
    for text in TEXTS + ["Jack, and JILL!"]:
        ids = tokenizer.encode(text)
        assert ids and BLANK_ID not in ids
        assert tokenizer.decode(ids) == normalize_text(text)
    assert tokenizer.decode([BLANK_ID, UNK_ID, *tokenizer.encode("the fox"), BLANK_ID]) == "the fox"
    assert tokenizer.starts_word[tokenizer.encode("the")[0]]


def test_encode_batch_pads_with_blank():
    tokens, lengths = tiny_tokenizer().encode_batch(["the fox", "", "in being comparatively modern"])
    assert lengths[1] == 0 and tokens.shape == (3, int(lengths.max()))
    assert (tokens[0, lengths[0] :] == BLANK_ID).all() and (tokens[1] == BLANK_ID).all()


def test_save_load_round_trip(tmp_path):
    tokenizer = tiny_tokenizer()
    loaded = Tokenizer.load(tokenizer.save(tmp_path / "tokenizer.model"))
    assert loaded.vocab_size == tokenizer.vocab_size
    assert loaded.encode(TEXTS[0]) == tokenizer.encode(TEXTS[0])


def test_bpe_and_errors(tmp_path):
    bpe = Tokenizer.train(TEXTS, vocab_size=60, model_type="bpe")
    assert bpe.decode(bpe.encode(TEXTS[1])) == TEXTS[1]
    with pytest.raises(ValueError, match="model_type"):
        Tokenizer.train(TEXTS, model_type="word")
    with pytest.raises(ValueError, match="no text"):
        Tokenizer.train(["123", "!!"])
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        Tokenizer.load(tmp_path / "missing.model")
    plain = io.BytesIO()  # a sentencepiece model of someone else's: <unk> at id 0
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS), model_writer=plain, vocab_size=40, hard_vocab_limit=False, minloglevel=2
    )
    with pytest.raises(ValueError, match="id 0 must be the blank"):
        Tokenizer(plain.getvalue())
