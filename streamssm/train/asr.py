"""Train the speech recogniser: `python -m streamssm.train asr --config configs/asr.json`.

Data: the TTS sentence corpus read by the training voices (`python -m streamssm.data sentences`)
and the train parts of real recordings (`real_split(name)["train"]`; their eval parts are never
read), each real utterance listed `real_repeat` times per epoch so that minutes of real speech are
not drowned by tens of hours of TTS. The first run freezes that list into OUT/train.jsonl and
trains a sentencepiece tokenizer on its texts (OUT/tokenizer.model); later runs reuse both, so a
resumed run sees the same utterances and token ids (delete OUT to start afresh). With `init_from`
a run starts from a trained model instead (its architecture, weights, feature normalisation and
tokenizer; the config's model settings are not used) with a fresh optimizer and schedule: how a
later session trains on when the checkpoint is gone with its machine. Batches come from
the data toolkit's `make_loader` (duration-bucketed, an equal share per torchrun process) with
waveform augmentation (noise, reverberation, telephone band, gain, speed and pitch) and SpecAugment
on the fly, or, with waveform augmentation off, clean features from the fp16 feature cache
(OUT/cache, built once by the first process while the others wait). The encoder's fixed feature
normalisation is measured on clean training utterances before the first step.

Training: AdamW with warm-up and cosine decay, gradient clipping, bf16 autocast on CUDA devices
that support it (float32 elsewhere), DistributedDataParallel under torchrun (gloo on CPU, nccl on
CUDA; `max_seconds` is per process). OUT/checkpoint (model, optimizer, progress) is written every
`checkpoint_every` steps and a restarted run goes on from it; the epoch it was cut in starts again
in a batch order drawn from the step, so resuming costs no data loading. OUT/log.jsonl gets the
losses, learning rate, step time and audio hours seen every `log_every` steps and, every
`validate_every` steps, the greedy WER and CER of a few held-out TTS utterances (held-out voices
and text). At the end the model, tokenizer included, goes to `model_dir` and OUT/compute.json
records the compute: wall time, device and processes of every session, steps, audio hours.

Distillation (`teacher`, `distill_weight` > 0): a linear head on the encoder output predicts the
teacher's encoder frames `distill_delay` frames late (streamssm/distill/frames.py), from outputs
stored beforehand by `python -m streamssm.distill encode`; utterances without stored outputs train
on text alone. `lattice_rows` builds the transducer lattice a few utterances at a time.

Weight transfer (`transfer_from`: a Whisper teacher): the encoder is a student of the teacher's
shape initialised from its weights (streamssm/distill/transfer.py), the decoder and joiner from
`init_from` where shapes agree; `layer_distill_weight` > 0 aligns every hidden state of the student
with the teacher's, computed on the fly from the batch's features (streamssm/distill/layers.py);
`text_weight` 0 trains on that alignment alone, so untranscribed audio takes part;
`transfer_weights` false keeps the student's shape and front end but not the teacher's weights
(the from-scratch arm of benchmarks/asr_ablation.py). A trained encoder under new heads (a
transferred student's first text run) can be held still for the first `frozen_encoder_steps`, so
that the heads' first, large gradients do not reach it.

configs/asr.json trains the first model from scratch; configs/asr_distill.json continues a shipped
model (`init_from`) on real speech, pseudo-labels and TTS with a teacher. Step times, audio hours
and the runs behind the shipped model are in models/asr/README.md and OUT/compute.json. Choose
`steps` once per run: the learning-rate schedule follows it, or `time_limit_s` when that comes
first (a run on a lent machine ends in time, its schedule complete: scripts/gpu_train.sh).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from ..data.augment import Augmenter
from ..data.cache import FeatureCache
from ..data.dataset import SpeechDataset, collate, make_loader
from ..data.manifest import Utterance, read_manifest, write_manifest
from ..data.splits import real_split
from ..distill.cache import TeacherCache
from ..distill.frames import FrameDistillation, batch_targets
from ..distill.layers import LayerTargets, layer_distillation_loss
from ..distill.transfer import WHISPER_FEATURES, student_config, transfer, use_whisper_scaling, whisper_tensors
from ..features import FeatureConfig, encoder_frames
from ..models import ASRConfig, ASRModel, load_model, resolve_model_dir, save_model
from ..nn.decoder import DecoderConfig
from ..nn.encoder import SUBSAMPLING, EncoderConfig
from ..decoding.speech import SpeechDecoding
from ..tokenizer import TOKENIZER_FILE, Tokenizer, normalize_text
from .common import (
    Distributed,
    LossLog,
    cosine_lr,
    load_checkpoint,
    main_process_first,
    save_checkpoint,
    setup_distributed,
)


@dataclass
class ASRTrainConfig:
    out_dir: str = "data/train/asr"  # frozen data list, tokenizer, cache, checkpoints, logs, compute.json
    model_dir: str = "models/asr"  # the final model
    model_dtype: str = "float32"  # of the final model's file ("float16" halves it); training is unchanged
    init_from: str | None = (
        None  # a model folder (or bundled name) to start from: its architecture, weights and tokenizer
    )
    manifests: list[str] = field(default_factory=lambda: ["data/asr_tts/train/manifest.jsonl"])
    real_speech: list[str] = field(default_factory=lambda: ["ljs-reread"])  # their train parts
    real_repeat: int = 4  # times each real utterance is listed per epoch
    vocab_size: int = 256  # blank and <unk> included; may come out smaller on little text
    tokenizer_type: str = "unigram"  # or "bpe"
    encoder: dict = field(
        default_factory=lambda: dict(
            d_model=256, n_layers=8, d_state=64, headdim=64, expand=2, subsampling_channels=256, block_size=64
        )
    )
    decoder: dict = field(default_factory=lambda: dict(d_model=256, n_layers=2, d_state=32, headdim=32))
    joiner_dim: int = 256
    ctc_weight: float = 0.3
    lattice_rows: int | None = None  # transducer lattice built this many utterances at a time (bounds memory)
    teacher: str | None = None  # distil this teacher's encoder outputs (stored by `python -m streamssm.distill encode`)
    teacher_cache: str = "data/teacher_cache"
    distill_weight: float = 0.0  # loss += distill_weight * cosine distance to the teacher's frames
    distill_delay: int = 4  # student frame t predicts teacher frame t - distill_delay (40 ms frames)
    transfer_from: str | None = None  # a Whisper teacher (or .npz of its encoder) initialising a student of its shape
    transfer_weights: bool = True  # False: the student of transfer_from's shape and front end, freshly initialised
    layer_distill_weight: float = 0.0  # loss += this * hidden-state alignment with `teacher`, every layer
    text_weight: float = 1.0  # weight of the CTC + transducer losses; 0: distillation only, no transcripts needed
    max_seconds: float = 160.0  # padded audio per batch and process
    steps: int = 6000
    time_limit_s: float | None = None  # end the run (model saved) after this long; the lr schedule keeps pace
    lr: float = 1e-3
    warmup: int = 500
    frozen_encoder_steps: int = 0  # the encoder's learning rate is 0 for this many steps: new heads settle first
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    augment: bool = True  # waveform augmentation (needs the audio, so no feature cache)
    augment_options: dict = field(default_factory=lambda: dict(p_speed=0.5, p_pitch=0.3))  # Augmenter fields
    noise_dir: str = "../shared/data/noise"
    spec_augment: bool = True
    feature_cache: bool = False  # clean features from OUT/cache; only with augment off
    loader_workers: int | None = None  # per process; None: the cores left over by `threads`
    mixed_precision: bool = True  # bf16 autocast where supported (CUDA), float32 elsewhere
    statistics_utterances: int = 200  # clean utterances that set the feature normalisation
    validation_manifest: str = "data/asr_tts/heldout/manifest.jsonl"  # skipped when missing
    validation_utterances: int = 32
    validate_every: int = 250  # steps; 0 never
    checkpoint_every: int = 50
    log_every: int = 10
    threads: int = 2  # torch threads per process
    seed: int = 0

    def __post_init__(self):
        if self.layer_distill_weight and not self.teacher:
            raise ValueError(
                "layer_distill_weight needs a teacher (the Whisper model the encoder was transferred from)"
            )
        if not self.text_weight and not self.layer_distill_weight:
            raise ValueError("text_weight 0 leaves nothing to train: set layer_distill_weight > 0")
        if self.augment and self.feature_cache:
            raise ValueError(
                "feature_cache holds clean features: turn augment off to use it (waveform augmentation reads the audio)"
            )

    @classmethod
    def from_file(cls, path) -> "ASRTrainConfig":
        return cls(**json.loads(Path(path).read_text()))


def training_utterances(config: ASRTrainConfig) -> list[Utterance]:
    """The TTS manifests, then each real train part `real_repeat` times; utterances without words
    are left out, unless the run trains without text (`text_weight` 0)."""
    tts = [u for manifest in config.manifests for u in read_manifest(manifest)]
    real = [u for name in config.real_speech for u in real_split(name)["train"]]
    utterances = [u for u in tts + real * config.real_repeat if normalize_text(u.text or "") or not config.text_weight]
    if not utterances:
        raise ValueError(f"no transcribed training utterances in {config.manifests} and {config.real_speech}")
    return utterances


def frozen_training_data(config: ASRTrainConfig, out: Path) -> tuple[list[Utterance], Tokenizer]:
    """The training utterances and tokenizer: made on the first run, read back on every later one."""
    manifest, tokenizer_file = out / "train.jsonl", out / TOKENIZER_FILE
    if not manifest.exists():
        write_manifest(manifest, training_utterances(config))
    utterances = read_manifest(manifest)
    if not tokenizer_file.exists() and config.init_from:
        shutil.copy(resolve_model_dir(config.init_from) / TOKENIZER_FILE, tokenizer_file)
    elif not tokenizer_file.exists():
        texts = sorted({u.text for u in utterances})
        Tokenizer.train(texts, config.vocab_size, config.tokenizer_type).save(tokenizer_file)
    return utterances, Tokenizer.load(tokenizer_file)


def build_model(config: ASRTrainConfig, tokenizer: Tokenizer) -> ASRModel:
    """A fresh model as the config describes it, or the `init_from` model (its own architecture),
    or with `transfer_from` a Whisper student (see `transferred_model`)."""
    if config.transfer_from:
        return transferred_model(config, tokenizer)
    if config.init_from:
        return load_model(config.init_from).train()
    model_config = ASRConfig(
        tokenizer.vocab_size,
        encoder=EncoderConfig(**config.encoder),
        decoder=DecoderConfig(**config.decoder),
        joiner_dim=config.joiner_dim,
        ctc_weight=config.ctc_weight,
    )
    return ASRModel(model_config, tokenizer)


def transferred_model(config: ASRTrainConfig, tokenizer: Tokenizer) -> ASRModel:
    """An encoder of the teacher's shape initialised from its weights (freshly without
    `transfer_weights`), reading Whisper's features; the decoder (as `config.decoder` says, or
    `init_from`'s) and joiner taken from `init_from` wherever a weight's name and shape agree."""
    tensors = whisper_tensors(config.transfer_from)
    donor = load_model(config.init_from) if config.init_from else None
    model_config = ASRConfig(
        tokenizer.vocab_size,
        encoder=student_config(tensors),
        decoder=donor.config.decoder if donor else DecoderConfig(**config.decoder),
        features=WHISPER_FEATURES,
        joiner_dim=donor.config.joiner_dim if donor else config.joiner_dim,
        ctc_weight=config.ctc_weight,
    )
    model = ASRModel(model_config, tokenizer)
    if config.transfer_weights:
        transfer(model.encoder, tensors)
    else:
        use_whisper_scaling(model.encoder)
    if donor:
        own = model.state_dict()
        shared = {k: v for k, v in donor.state_dict().items() if k in own and v.shape == own[k].shape}
        model.load_state_dict({k: v for k, v in shared.items() if not k.startswith("encoder.")}, strict=False)
    return model.train()


def set_feature_normalisation(model: ASRModel, dataset: SpeechDataset, config: ASRTrainConfig) -> None:
    """The encoder's fixed feature mean and deviation per mel band, measured on up to
    `statistics_utterances` utterances of `dataset` (clean: no augmentation)."""
    count = min(config.statistics_utterances, len(dataset))
    picked = np.random.default_rng(config.seed).choice(len(dataset), count, replace=False)
    frames = torch.cat([dataset[int(i)]["features"] for i in picked])
    model.encoder.feature_mean.copy_(frames.mean(0))
    model.encoder.feature_std.copy_(frames.std(0).clamp(min=1e-3))


class Validation:
    """Greedy WER and CER of a few utterances, decoded in batches by the model's own search."""

    def __init__(self, utterances: list[Utterance], features: FeatureConfig, batch_size: int = 8):
        dataset = SpeechDataset(utterances, config=features)
        self.batches = [
            collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            for start in range(0, len(dataset), batch_size)
        ]

    @classmethod
    def from_config(cls, config: ASRTrainConfig, features: FeatureConfig) -> "Validation | None":
        """Every n-th utterance of the validation manifest (so all its voices take part); None when off."""
        path = Path(config.validation_manifest)
        if not (config.validate_every and config.validation_utterances and path.exists()):
            return None
        held_out = read_manifest(path)
        picked = held_out[:: max(1, len(held_out) // config.validation_utterances)][: config.validation_utterances]
        return cls(picked, features)

    @torch.no_grad()
    def __call__(self, model: ASRModel) -> dict:
        from ..eval.asr import (  # jiwer and Whisper's normaliser: the eval extra
            error_rates,
            score,
        )

        model.eval()
        search, device, scores = SpeechDecoding(model).search, next(model.parameters()).device, []
        for batch in self.batches:
            frames = batch["lengths"] // SUBSAMPLING
            encoded, _ = model.encoder(batch["features"][:, : int(frames.max()) * SUBSAMPLING].to(device))
            found, _ = search.run(encoded, lengths=frames)
            hypotheses = [model.tokenizer.decode([token for token, _, _ in row]) for row in found]
            scores += [score(text, hypothesis) for text, hypothesis in zip(batch["texts"], hypotheses)]
        model.train()
        return error_rates(scores)


class TrainedASR(nn.Module):
    """The ASR model plus, when distilling stored frames, the frame-distillation head: one module
    for DDP to sync. Returns (total, transducer, ctc, distillation) losses; the distillation input
    is (targets, has_target) of stored frames, or (has_target, *teacher states) of layer alignment."""

    def __init__(self, model: ASRModel, config: ASRTrainConfig, teacher_dim: int | None):
        super().__init__()
        self.model, self.config = model, config
        self.distillation = (
            FrameDistillation(model.config.encoder.d_model, teacher_dim, config.distill_delay) if teacher_dim else None
        )

    def forward(self, features, feature_lengths, tokens, token_lengths, *teacher):
        encoded, frames, hidden = self.model.encode_batch(features, feature_lengths, tokens, token_lengths)
        zero = encoded.new_zeros(())
        if self.config.text_weight:
            text, transducer, ctc = self.model.text_losses(
                encoded, frames, tokens, token_lengths, self.config.lattice_rows
            )
        else:
            text, transducer, ctc = zero, zero, zero
        if self.distillation is not None:
            distill, weight = self.distillation(encoded, frames, *teacher), self.config.distill_weight
        elif self.config.layer_distill_weight:
            has_target, *states = teacher
            distill = layer_distillation_loss([*hidden, encoded], states, has_target, self.config.distill_delay)
            weight = self.config.layer_distill_weight
        else:
            distill, weight = zero, 0.0
        return self.config.text_weight * text + weight * distill, transducer, ctc, distill


class TeacherTargets:
    """The stored teacher frames of a batch's utterances, fitted to the student's frame counts."""

    def __init__(self, config: ASRTrainConfig, utterances: list[Utterance]):
        self.cache, self.utterances = TeacherCache(config.teacher_cache, config.teacher), utterances
        stored = [self.cache.path(u).exists() for u in utterances]
        if not any(stored):
            raise FileNotFoundError(
                f"no {config.teacher} outputs in {self.cache.folder}: store them first with "
                f"python -m streamssm.distill encode SOURCES --teacher {config.teacher} --cache {config.teacher_cache}"
            )
        self.coverage = sum(stored) / len(stored)
        self.dim = self.cache.load(utterances[stored.index(True)]).shape[1]

    def __call__(self, indices, frames) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_targets([self.cache.load(self.utterances[i]) for i in indices], frames.tolist(), self.dim)


def training_loader(config: ASRTrainConfig, env: Distributed, utterances, cache, start_step: int, features):
    """Duration-bucketed batches of this process, augmented as configured; loader workers default
    to the cores that the torch threads of all processes leave free."""
    augmenter = Augmenter(noise_dir=config.noise_dir, **config.augment_options) if config.augment else None
    workers = (
        config.loader_workers
        if config.loader_workers is not None
        else max(0, (os.cpu_count() or 1) // env.world_size - config.threads)
    )
    loader = make_loader(
        utterances,
        config.max_seconds,
        seed=data_seed(config.seed, start_step),
        num_workers=workers,
        augmenter=augmenter,
        spec_augment=config.spec_augment,
        cache=cache,
        config=features,
    )
    if len(loader) == 0:
        raise ValueError(f"{len(utterances)} utterances make no batch for each of {env.world_size} processes")
    return loader


def batches_from(loader, first_epoch: int):
    """(epoch, batch) pairs, epoch after epoch, from `first_epoch` on."""
    for epoch in itertools.count(first_epoch):
        loader.batch_sampler.set_epoch(epoch)
        loader.dataset.set_epoch(epoch)
        for batch in loader:
            yield epoch, batch


def data_seed(seed: int, step: int) -> int:
    """The loader's seed for a run that starts at `step`: a fresh batch order for a resumed epoch."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def averaged_losses_and_audio(env: Distributed, losses, audio_seconds: float) -> tuple[list[float], float]:
    """The losses averaged over the processes and the seconds of audio they all took, in one exchange."""
    values = torch.stack(
        [
            *(loss.detach().double() for loss in losses),
            torch.tensor(audio_seconds, dtype=torch.float64, device=losses[0].device),
        ]
    )
    if env.world_size > 1:
        dist.all_reduce(values)
    *summed, seconds = values.tolist()
    return [value / env.world_size for value in summed], seconds


def parameter_groups(trained: nn.Module, config: ASRTrainConfig) -> list[dict]:
    """The optimizer's parameter groups: one, or with `frozen_encoder_steps` the encoder's first."""
    if not config.frozen_encoder_steps:
        return [{"params": list(trained.parameters())}]
    encoder = {id(p) for p in trained.model.encoder.parameters()}
    return [
        {"params": [p for p in trained.parameters() if id(p) in encoder]},
        {"params": [p for p in trained.parameters() if id(p) not in encoder]},
    ]


def scheduled_step(step: int, config: ASRTrainConfig, elapsed_s: float) -> int:
    """Where the learning-rate schedule is: at `step`, or, after warm-up, as far on as the share of
    `time_limit_s` used, so that a run cut by its time limit has still decayed its learning rate."""
    if not config.time_limit_s or step < config.warmup:
        return step
    return max(step, int(config.steps * elapsed_s / config.time_limit_s))


def out_of_time(env: Distributed, config: ASRTrainConfig, elapsed_s: float) -> bool:
    """Whether the run has used its `time_limit_s`; every process gets the main process's answer."""
    if not config.time_limit_s:
        return False
    verdict = torch.tensor([float(elapsed_s >= config.time_limit_s)], device=env.device)
    if env.world_size > 1:
        dist.broadcast(verdict, 0)
    return bool(verdict.item())


def uses_bf16(config: ASRTrainConfig, env: Distributed) -> bool:
    return config.mixed_precision and env.device.type == "cuda" and torch.cuda.is_bf16_supported()


class Session:
    """One run of `train`, set-up included: where it ran, from which step, for how long (for compute.json)."""

    def __init__(self, env: Distributed, precision: str):
        device = (
            torch.cuda.get_device_name(env.device)
            if env.device.type == "cuda"
            else f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads per process"
        )
        self.fields = {
            "device": device,
            "processes": env.world_size,
            "precision": precision,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.started, self.first_step = time.time(), 0

    def record(self, last_step: int) -> dict:
        return {
            **self.fields,
            "first_step": self.first_step,
            "last_step": last_step,
            "wall_seconds": round(time.time() - self.started, 1),
        }


def with_session(progress: dict, session: Session) -> dict:
    """`progress` with this session's record added to the earlier sessions'."""
    return {**progress, "sessions": progress["sessions"] + [session.record(progress["step"])]}


def compute_summary(progress: dict) -> dict:
    sessions = progress["sessions"]
    return {
        "steps": progress["step"],
        "audio_hours_seen": round(progress["audio_hours"], 3),
        "wall_seconds": round(sum(s["wall_seconds"] for s in sessions), 1),
        "process_seconds": round(sum(s["wall_seconds"] * s["processes"] for s in sessions), 1),
        "sessions": sessions,
    }


def train(config: ASRTrainConfig) -> Path:
    env = setup_distributed()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    bf16 = uses_bf16(config, env)
    session = Session(env, "bf16" if bf16 else "fp32")
    out = Path(config.out_dir)
    with main_process_first(env):
        utterances, tokenizer = frozen_training_data(config, out)
    model = build_model(config, tokenizer)
    with main_process_first(env):
        cache = FeatureCache.build(utterances, out / "cache", model.config.features) if config.feature_cache else None
    teacher = TeacherTargets(config, utterances) if config.teacher and config.distill_weight > 0 else None
    layer_targets = LayerTargets(config.teacher, env.device) if config.layer_distill_weight else None
    if layer_targets and model.config.encoder.stem != "whisper":
        raise ValueError(
            "layer distillation needs a Whisper-shaped student: set transfer_from, or init_from such a model"
        )
    trained = TrainedASR(model, config, teacher.dim if teacher else None).to(env.device)
    optimizer = torch.optim.AdamW(parameter_groups(trained, config), lr=config.lr, weight_decay=config.weight_decay)
    progress = load_checkpoint(out / "checkpoint", trained, optimizer)
    if progress is None:
        progress = {"step": 0, "epoch": 0, "audio_hours": 0.0, "sessions": []}
        if env.is_main and not (
            config.init_from or config.transfer_from
        ):  # DDP copies rank 0's parameters and buffers to the others
            set_feature_normalisation(model, SpeechDataset(utterances, cache=cache), config)
    progress["config"], session.first_step = asdict(config), progress["step"]
    if teacher and env.is_main:
        print(f"distilling {config.teacher}: {teacher.coverage:.0%} of the training utterances have its outputs")
    step_module = torch.nn.parallel.DistributedDataParallel(trained) if env.world_size > 1 else trained
    features = model.config.features
    loader = training_loader(config, env, utterances, cache, progress["step"], features)
    validation = Validation.from_config(config, features) if env.is_main else None
    log = LossLog(out / "log.jsonl", enabled=env.is_main)
    bar = tqdm(total=config.steps, initial=progress["step"], desc="training asr", disable=not env.is_main)
    for step, (epoch, batch) in zip(range(progress["step"], config.steps), batches_from(loader, progress["epoch"])):
        started = time.perf_counter()
        elapsed = time.time() - session.started
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(scheduled_step(step, config, elapsed), config.steps, config.lr, config.warmup)
        if step < config.frozen_encoder_steps:
            optimizer.param_groups[0]["lr"] = 0.0  # AdamW scales its update and weight decay by it
        tokens, token_lengths = tokenizer.encode_batch([text or "" for text in batch["texts"]])
        inputs = [batch["features"], batch["lengths"], tokens, token_lengths]
        if teacher:
            inputs += teacher(batch["indices"], encoder_frames(batch["lengths"]))
        if layer_targets:
            states, has_target = layer_targets(batch["features"], batch["lengths"])
            inputs += [has_target, *states]
        with torch.autocast(env.device.type, torch.bfloat16, enabled=bf16):
            losses = step_module(*(tensor.to(env.device) for tensor in inputs))
        optimizer.zero_grad(set_to_none=True)
        losses[0].backward()
        torch.nn.utils.clip_grad_norm_(trained.parameters(), config.grad_clip)
        optimizer.step()
        audio_seconds = float(batch["lengths"].sum()) * features.hop_length / features.sample_rate
        (total, transducer, ctc, distill), seconds = averaged_losses_and_audio(env, losses, audio_seconds)
        progress.update(step=step + 1, epoch=epoch, audio_hours=progress["audio_hours"] + seconds / 3600)
        bar.update()
        bar.set_postfix(
            loss=f"{total:.3f}",
            transducer=f"{transducer:.3f}",
            ctc=f"{ctc:.3f}",
            distill=f"{distill:.3f}",
            hours=f"{progress['audio_hours']:.2f}",
        )
        if step % config.log_every == 0:
            log.write(
                step=step,
                loss=total,
                transducer=transducer,
                ctc=ctc,
                distill=distill,
                lr=optimizer.param_groups[0]["lr"],
                step_seconds=round(time.perf_counter() - started, 3),
                audio_hours=round(progress["audio_hours"], 4),
            )
        if validation and (step + 1) % config.validate_every == 0:
            log.write(step=step, **{f"validation_{name}": value for name, value in validation(model).items()})
        last = step + 1 == config.steps or out_of_time(env, config, time.time() - session.started)
        if env.is_main and ((step + 1) % config.checkpoint_every == 0 or last):
            save_checkpoint(out / "checkpoint", trained, optimizer, with_session(progress, session))
        if last:
            break
    bar.close()
    if not env.is_main:
        return out
    (out / "compute.json").write_text(json.dumps(compute_summary(with_session(progress, session)), indent=1) + "\n")
    return save_model(model, config.model_dir, getattr(torch, config.model_dtype))
