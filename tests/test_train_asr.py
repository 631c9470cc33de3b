"""ASR training: a few steps on real clips write a checkpoint, resume from it, and end in a model that
loads and streams; the data list holds only train parts; two torchrun processes (gloo) train together."""

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from streamssm.audio import read_audio
from streamssm.data.manifest import write_manifest
from streamssm.data.splits import real_split
from streamssm.models import load_model
from streamssm.recognizer import StreamingRecognizer
from streamssm.train.asr import ASRTrainConfig, scheduled_step, train, training_utterances
from train_helpers import torchrun_train

REPO = Path(__file__).resolve().parents[1]


def shortest_train_clips(count: int):
    return sorted(real_split("ljs-reread")["train"], key=lambda u: u.duration)[:count]


def tiny_config(tmp_path, shared_data, steps, **options) -> ASRTrainConfig:
    """A tiny model trained on the 8 shortest real ljs-reread train clips."""
    manifest = tmp_path / "clips.jsonl"
    write_manifest(manifest, shortest_train_clips(8))
    layer = dict(d_state=16, headdim=16, block_size=16)
    values = dict(
        out_dir=str(tmp_path / "run"),
        model_dir=str(tmp_path / "model"),
        manifests=[str(manifest)],
        real_speech=[],
        vocab_size=40,
        encoder=dict(d_model=32, n_layers=1, subsampling_channels=32, **layer),
        decoder=dict(d_model=32, n_layers=1, **layer),
        joiner_dim=32,
        max_seconds=8.0,
        steps=steps,
        warmup=2,
        noise_dir=str(shared_data / "noise"),
        statistics_utterances=4,
        validation_manifest=str(manifest),
        validation_utterances=2,
        validate_every=2,
        checkpoint_every=2,
        log_every=1,
        threads=1,
        loader_workers=0,
    )
    return ASRTrainConfig(**{**values, **options})


def read_log(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]


def test_training_resumes_and_ends_in_a_streaming_model(tmp_path, shared_data):
    train(tiny_config(tmp_path, shared_data, steps=2))
    run = tmp_path / "run"
    assert json.loads((run / "checkpoint" / "progress.json").read_text())["step"] == 2
    tokenizer = (run / "tokenizer.model").read_bytes()
    train(tiny_config(tmp_path, shared_data, steps=4))
    log = read_log(tmp_path)
    assert [row["step"] for row in log if "loss" in row] == [0, 1, 2, 3]  # the second run went on from step 2
    assert [row["step"] for row in log if "validation_wer" in row] == [1, 3]
    assert all(np.isfinite(row["loss"]) and row["audio_hours"] > 0 for row in log if "loss" in row)
    assert (run / "tokenizer.model").read_bytes() == tokenizer  # trained once, reused on resume
    compute = json.loads((run / "compute.json").read_text())
    assert compute["steps"] == 4 and compute["audio_hours_seen"] > 0
    assert [(s["first_step"], s["last_step"], s["processes"]) for s in compute["sessions"]] == [(0, 2, 1), (2, 4, 1)]

    model = load_model(tmp_path / "model")
    assert model.kind == "asr" and model.tokenizer.model_proto == tokenizer
    assert float(model.encoder.feature_mean.abs().sum()) > 0  # normalisation measured on the data
    stream = StreamingRecognizer(model).create_stream()
    audio, sizes = read_audio(shortest_train_clips(1)[0].audio), set()
    for start in range(0, len(audio), 2400):
        events = stream.accept_waveform(audio[start : start + 2400], 16000)
        sizes.add(stream.state_nbytes)
    assert all(e.kind in ("partial", "final") for e in events + stream.finish())
    assert len(sizes) == 1


def test_training_data_holds_train_parts_only(tmp_path, shared_data):
    parts = real_split("ljs-reread")
    config = tiny_config(tmp_path, shared_data, steps=1, manifests=[], real_speech=["ljs-reread"], real_repeat=2)
    utterances = training_utterances(config)
    assert len(utterances) == 2 * len(parts["train"])
    assert not {u.audio for u in utterances} & {u.audio for u in parts["eval"]}


def test_shipped_config_loads_and_cache_excludes_waveform_augmentation():
    config = ASRTrainConfig.from_file(REPO / "configs" / "asr.json")
    assert config.augment and not config.feature_cache
    with pytest.raises(ValueError, match="augment"):
        ASRTrainConfig(augment=True, feature_cache=True)


def test_torchrun_two_processes(tmp_path, shared_data):
    config = tiny_config(tmp_path, shared_data, steps=2, augment=False, feature_cache=True, validate_every=0)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(asdict(config)))
    done = torchrun_train("asr", config_file)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "checkpoint" / "progress.json").read_text())["step"] == 2
    assert json.loads((tmp_path / "run" / "compute.json").read_text())["sessions"][0]["processes"] == 2
    assert (tmp_path / "run" / "cache" / "index.json").exists()
    assert load_model(tmp_path / "model").kind == "asr"


def continued(tmp_path, shared_data, name: str, steps: int, **options) -> ASRTrainConfig:
    """A tiny run continuing tmp_path/model (OUT tmp_path/name, model tmp_path/model_name)."""
    return tiny_config(
        tmp_path,
        shared_data,
        steps=steps,
        validate_every=0,
        init_from=str(tmp_path / "model"),
        out_dir=str(tmp_path / name),
        model_dir=str(tmp_path / f"model_{name}"),
        **options,
    )


def test_training_from_a_model_keeps_its_architecture_tokenizer_and_normalisation(tmp_path, shared_data):
    train(tiny_config(tmp_path, shared_data, steps=1, validate_every=0))
    first = load_model(tmp_path / "model")
    config = continued(
        tmp_path, shared_data, "again", 1, vocab_size=30, encoder=dict(d_model=48, n_layers=2, subsampling_channels=16)
    )
    train(config)
    second = load_model(config.model_dir)
    assert second.config == first.config  # the settings of `config` for a fresh model are not used
    assert second.tokenizer.model_proto == first.tokenizer.model_proto
    assert (tmp_path / "again" / "tokenizer.model").read_bytes() == first.tokenizer.model_proto
    assert second.encoder.feature_mean.equal(first.encoder.feature_mean)  # kept, not measured again
    changed = [name for name, value in second.state_dict().items() if not value.equal(first.state_dict()[name])]
    assert changed  # and it trained on from there


def test_time_limit_ends_the_run_with_its_model_and_the_schedule_keeps_pace(tmp_path, shared_data):
    train(tiny_config(tmp_path, shared_data, steps=50, time_limit_s=1e-3, validate_every=0))
    compute = json.loads((tmp_path / "run" / "compute.json").read_text())
    assert compute["steps"] == 1  # stopped after the first step, far short of 50
    assert load_model(tmp_path / "model").kind == "asr"
    config = ASRTrainConfig(steps=1000, warmup=100, time_limit_s=600)
    assert scheduled_step(50, config, elapsed_s=300) == 50  # warm-up goes by steps
    assert scheduled_step(200, config, elapsed_s=300) == 500  # half the time used: half the schedule
    assert scheduled_step(800, config, elapsed_s=300) == 800
    assert scheduled_step(200, ASRTrainConfig(steps=1000, warmup=100), elapsed_s=1e6) == 200


def test_frozen_encoder_steps_leave_the_encoder_and_train_the_rest(tmp_path, shared_data):
    train(tiny_config(tmp_path, shared_data, steps=1, validate_every=0))
    first = load_model(tmp_path / "model").state_dict()
    moves = {}
    for frozen in (2, 1):
        config = continued(tmp_path, shared_data, f"frozen{frozen}", 2, frozen_encoder_steps=frozen)
        train(config)
        after = load_model(config.model_dir).state_dict()
        moves[frozen] = {name for name, value in after.items() if not value.equal(first[name])}
    assert moves[2] and not any(name.startswith("encoder.") for name in moves[2])
    assert any(name.startswith("encoder.") for name in moves[1])  # free from the second step on
