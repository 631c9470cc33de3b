"""KWS training: a few steps on real clips write a checkpoint, resume from it, and end in a loadable model."""

import json

import numpy as np
import pytest
import torch

from streamssm.data.augment import Augmenter
from streamssm.data.manifest import read_manifest, write_manifest
from streamssm.models import load_model
from streamssm.train.kws import SR, ExampleMaker, KWSTrainConfig, carried_streams, train
from train_helpers import torchrun_train

KEYWORDS = ["alexa", "jarvis"]


def tiny_config(tmp_path, shared_data, steps):
    wwb = read_manifest(shared_data / "kws" / "wwb" / "manifest.jsonl")
    clips = [u for k in KEYWORDS for u in [u for u in wwb if u.keyword == k][:8]]
    negatives = [u for u in read_manifest(shared_data / "kws" / "precise" / "manifest.jsonl") if u.keyword is None][:20]
    manifest = tmp_path / "clips.jsonl"
    write_manifest(manifest, clips + negatives)
    return KWSTrainConfig(
        out_dir=str(tmp_path / "run"),
        model_dir=str(tmp_path / "model"),
        keywords=KEYWORDS,
        encoder=dict(d_model=32, n_layers=1, d_state=16, headdim=16, subsampling_channels=32),
        manifests=[str(manifest)],
        real_kws=[],
        real_speech=[],
        noise_dir=str(shared_data / "noise"),
        steps=steps,
        batch_size=4,
        checkpoint_every=2,
        log_every=1,
        calibration_percent=50,
        mining_steps=[1],
        mining_windows=8,
        mining_threshold=0.0,
        threads=1,
    )


def test_training_resumes_and_saves_a_model(tmp_path, shared_data):
    train(tiny_config(tmp_path, shared_data, steps=2))
    progress = json.loads((tmp_path / "run" / "checkpoint" / "progress.json").read_text())
    assert progress["step"] == 2 and len(progress["hard_negatives"]) == 8  # mined at step 1, all fired
    train(tiny_config(tmp_path, shared_data, steps=4))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "step" in row] == [0, 1, 2, 3]  # the second run went on from step 2
    progress_after = json.loads((tmp_path / "run" / "checkpoint" / "progress.json").read_text())
    assert progress_after["step"] == 4 and progress_after["hard_negatives"] == progress["hard_negatives"]
    model = load_model(tmp_path / "model")
    assert model.config.keywords == KEYWORDS
    assert set(model.config.thresholds) == set(KEYWORDS)
    assert all(0 < t <= 1 for t in model.config.thresholds.values())


def test_a_run_starts_from_another_model_and_carries_streams_across_steps(tmp_path, shared_data):
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    train(tiny_config(tmp_path / "first", shared_data, steps=2))
    source = load_model(tmp_path / "first" / "model")
    config = tiny_config(tmp_path / "second", shared_data, steps=0)
    config.init_from, config.stream_continue = str(tmp_path / "first" / "model"), 0.5
    train(config)  # no step: the calibrated model is the source's weights
    assert all(
        torch.equal(a, b)
        for a, b in zip(source.state_dict().values(), load_model(config.model_dir).state_dict().values())
    )
    config.steps = 2
    train(config)
    assert json.loads((tmp_path / "second" / "run" / "checkpoint" / "progress.json").read_text())["step"] == 2
    config.keywords = KEYWORDS[::-1]
    config.out_dir = str(tmp_path / "third")
    with pytest.raises(ValueError, match="not the config's keywords"):
        train(config)


def test_carried_streams_go_on_from_the_state_or_start_afresh():
    model = load_model("kws")
    _, state = model(torch.randn(8, 40, 80, requires_grad=True))
    assert carried_streams(model, state, np.random.default_rng(0), 0.0) is None
    carried = carried_streams(model, state, np.random.default_rng(0), 0.5)
    fresh = model.encoder.initial_state(8)
    went_on = np.random.default_rng(0).random(8) < 0.5
    assert 0 < went_on.sum() < 8
    for i in range(8):
        expected = state if went_on[i] else fresh
        assert all(torch.equal(c[i], e[i]) for c, e in zip(carried.tensors(), expected.tensors())), i
    assert not any(t.requires_grad for t in carried.tensors())


def test_torchrun_two_processes(tmp_path, shared_data):
    config = tiny_config(tmp_path, shared_data, steps=2)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.__dict__))
    done = torchrun_train("kws", config_file)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "checkpoint" / "progress.json").read_text())["step"] == 2
    assert load_model(tmp_path / "model").config.keywords == KEYWORDS


def test_background_examples_are_non_speech_labelled_filler(shared_data):
    config = KWSTrainConfig(keywords=KEYWORDS, background_fraction=1.0, background_s=3.0)
    maker = ExampleMaker(
        KEYWORDS, pools=None, augmenter=Augmenter(noise_dir=shared_data / "noise", seed=0), config=config
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        audio, label, end, said = maker.make(rng)
        assert (label, end, said) == (0, 0, frozenset())
        assert 1.0 * SR <= len(audio) <= 3.0 * SR and np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio**2)) < 0.3  # quiet: noise of at most -20 dBFS, +6 dB gain, +3 dB added noise
