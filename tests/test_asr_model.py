"""ASRModel: the training loss (transducer + weighted CTC) on padded batches, save/load with the
tokenizer, and errors."""

import json

import pytest
import torch

from streamssm.models import ASRConfig, ASRModel, load_model, save_model
from asr_helpers import TEXTS, tiny_asr_model, tiny_tokenizer


def batch(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    feature_lengths = torch.tensor([203, 150, 177])  # not multiples of 4
    features = torch.randn(3, 203, 80, generator=g)
    for row, n in enumerate(feature_lengths.tolist()):
        features[row, n:] = 0.0
    tokens, token_lengths = model.tokenizer.encode_batch(TEXTS[2:5])
    tokens[1, token_lengths[1] :] = -1  # padding may hold anything
    return features, feature_lengths, tokens, token_lengths


def test_loss_of_a_padded_batch_is_the_mean_of_each_utterance_alone():
    model = tiny_asr_model(ctc_weight=0.5)
    features, feature_lengths, tokens, token_lengths = batch(model)
    total, transducer, ctc = model.loss(features, feature_lengths, tokens, token_lengths)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model(features, feature_lengths, tokens, token_lengths), (total, transducer, ctc))
    )
    assert torch.allclose(total, transducer + 0.5 * ctc) and ctc > 0 and transducer > 0
    alone = [
        model.loss(features[i : i + 1, :n], feature_lengths[i : i + 1], tokens[i : i + 1, :u], token_lengths[i : i + 1])
        for i, (n, u) in enumerate(zip(feature_lengths.tolist(), token_lengths.tolist()))
    ]
    for k in range(3):
        assert torch.allclose(torch.stack([a[k] for a in alone]).mean(), (total, transducer, ctc)[k], rtol=1e-5)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_loss_rejects_bad_lengths():
    model = tiny_asr_model()
    features, feature_lengths, tokens, token_lengths = batch(model)
    with pytest.raises(ValueError, match="feature_lengths must be in"):
        model.loss(features, feature_lengths + 1, tokens, token_lengths)
    with pytest.raises(ValueError, match=r"need features \(b, F, n_mels\)"):
        model.loss(features, feature_lengths, tokens[:2], token_lengths[:2])


@torch.no_grad()
def test_save_load_round_trip_with_the_tokenizer(tmp_path):
    model = tiny_asr_model(ctc_weight=0.2, search="ctc", max_symbols_per_frame=2)
    folder = save_model(model, tmp_path / "asr")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.model"]
    assert json.loads((folder / "config.json").read_text())["type"] == "asr"
    loaded = load_model(folder)
    assert isinstance(loaded, ASRModel) and loaded.config == model.config
    assert loaded.tokenizer.encode(TEXTS[0]) == model.tokenizer.encode(TEXTS[0])
    features = torch.randn(1, 40, 80)
    assert torch.equal(loaded.encoder(features)[0], model.encoder(features)[0])
    assert torch.equal(loaded.decoder(torch.tensor([[0, 5, 7]]))[0], model.decoder(torch.tensor([[0, 5, 7]]))[0])
    (folder / "tokenizer.model").unlink()
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_model(folder)


@torch.no_grad()
def test_half_precision_file_loads_into_the_float32_model(tmp_path):
    model = tiny_asr_model()
    full, half = save_model(model, tmp_path / "full"), save_model(model, tmp_path / "half", torch.float16)
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[name].half().to(value.dtype)), name
    features = torch.randn(1, 40, 80)
    assert torch.allclose(loaded.encoder(features)[0], model.encoder(features)[0], atol=1e-2)


def test_config_errors():
    tokenizer = tiny_tokenizer()
    with pytest.raises(ValueError, match="config.vocab_size"):
        ASRModel(ASRConfig(tokenizer.vocab_size + 1), tokenizer)
    with pytest.raises(ValueError, match="search must be one of"):
        ASRConfig(tokenizer.vocab_size, search="beam")
