"""Train the keyword spotter: `python -m streamssm.train kws --config configs/kws.json`.

Each training example is built on the fly: some lead-in (other speech or silence), then either a
keyword clip or a window of non-keyword speech, then a pause (and, with `tail_s`, a long quiet
stretch and more speech); real noise, reverberation and gain come from the augmenter. Frames after
the keyword's end (a short window) are trained to the keyword with a max-pooling loss (the best
frame of the window counts), all other frames to filler. Real recordings are drawn with a set share
of the examples, so the many TTS clips do not drown them.

Real transcribed speech (and teacher-labelled untranscribed speech, `labels`) is negative audio
only for the keywords it does not say: a keyword its transcript says is allowed beside filler on
its frames, and becomes a positive where word times or the transcript's end place it
(data.transcript_keywords). With `mining_steps`, the trainer draws a seeded set of negative windows
at those steps, keeps those on which a keyword fires, and draws them for `hard_negative_fraction`
of the negative examples from then on. With `stream_continue`, a batch row's next example goes on
from the encoder state its last one left, so the model keeps listening in long streams.
Checkpoints resume (carried encoder states are not saved: a resumed run starts its streams fresh);
at the end, thresholds are calibrated to a target false-alarm rate per keyword group on negatives
held back from training (real speech by whole speaker, TTS clips by path hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..audio import SAMPLE_RATE as SR, loud_span, read_audio
from ..data.augment import Augmenter, change_speed
from ..data.keyword_clips import DEFAULT_KEYWORDS, DIGITS, keyword_group
from ..data.manifest import Utterance, read_manifest
from ..data.splits import eval_speakers, real_kws_split, real_split
from ..data.transcript_keywords import keyword_ends, said_keywords
from ..decoding.keywords import moving_average
from ..features import SUBSAMPLING, FeatureConfig, log_mel
from ..models import KWSConfig, KWSModel, load_model, save_model
from ..nn.encoder import EncoderConfig
from .common import (
    LossLog,
    cosine_lr,
    load_checkpoint,
    save_checkpoint,
    setup_distributed,
)
from .kws_calibration import calibrate_thresholds, false_alarms_per_group, negative_peaks


@dataclass
class KWSTrainConfig:
    out_dir: str = "data/train/kws"  # checkpoints and logs
    model_dir: str = "models/kws"  # the final model
    keywords: list[str] = field(default_factory=lambda: list(DEFAULT_KEYWORDS))
    encoder: dict = field(
        default_factory=lambda: dict(
            d_model=128, n_layers=4, d_state=32, headdim=32, expand=2, subsampling_channels=128, block_size=64
        )
    )
    manifests: list[str] = field(default_factory=lambda: ["data/kws_tts/train/manifest.jsonl"])
    real_kws: list[str] = field(default_factory=lambda: ["wwb", "precise", "fsdd"])  # their train parts
    real_speech: list[str] = field(default_factory=lambda: ["ljs-reread"])  # train parts, as negatives
    labels: list[str] = field(default_factory=list)  # teacher transcripts (with word times) of untranscribed audio
    noise_dir: str = "../shared/data/noise"
    steps: int = 6000
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 200
    positive_fraction: float = 0.6
    real_positive_fraction: float = 0.5  # of a keyword's examples, drawn from real clips when it has any
    real_negative_fraction: float = 0.3  # of the non-keyword examples, drawn from real speech
    calibration_percent: int = 10  # negatives kept out of training (real: by speaker), to set thresholds on
    background_fraction: float = 0.0  # examples of non-speech only (silence or real noise), up to background_s
    background_s: float = 10.0  # and, when background_fraction > 0, lead-ins of non-speech up to 0.4 of it
    lead_s: float = 1.2  # longest speech before a keyword or non-keyword window
    negative_s: float = 2.5  # longest window of non-keyword speech
    tail_s: float = 0.0  # after the pause that follows a keyword: quiet up to this long, then half the time speech
    augment_options: dict = field(default_factory=dict)  # Augmenter fields; p_speed/speed act on keyword clips
    digit_augment_options: dict = field(default_factory=dict)  # over augment_options for digit examples
    mining_steps: list[int] = field(default_factory=list)  # steps at which hard negatives are mined
    mining_windows: int = 2000  # negative windows scored at each
    mining_threshold: float = 0.3  # a window whose smoothed posterior reaches this for a keyword it does not say
    hard_negative_fraction: float = 0.3  # of the negative examples, drawn from the mined windows
    window_before: int = 2  # frames before the keyword's end that may fire
    window_after: int = 5  # frames after it
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    threads: int = 2
    target_false_alarms_per_hour: float = 0.5  # per keyword group (or per keyword, without calibrate_by_group)
    calibrate_by_group: bool = True  # wake words, commands and digits each share the target
    threshold_ceiling: float = 0.95
    refractory_s: float | None = None  # the detector's; None: the model config's default
    init_from: str | None = None  # start from this model's weights (same keywords and encoder), fresh schedule
    stream_continue: float = 0.0  # chance that a batch row's next example goes on from its encoder state

    @classmethod
    def from_file(cls, path) -> "KWSTrainConfig":
        return cls(**json.loads(Path(path).read_text()))


class ClipBank:
    """Audio clips held in memory as int16 (`load`: cached on disk, so restarts do not decode again)."""

    def __init__(self, samples: np.ndarray, offsets: np.ndarray):
        self.samples, self.offsets = samples, offsets

    @classmethod
    def of(cls, clips) -> "ClipBank":
        """A bank of 16 kHz float clips."""
        clips = [(np.clip(c, -1, 1) * 32767).astype(np.int16) for c in clips]
        samples = np.concatenate(clips) if clips else np.zeros(0, np.int16)
        return cls(samples, np.cumsum([0] + [len(c) for c in clips]))

    @classmethod
    def load(cls, utterances: list[Utterance], cache_dir: Path) -> "ClipBank":
        key = hashlib.sha1("\n".join(str(u.audio) for u in utterances).encode()).hexdigest()[:16]
        cache = cache_dir / f"clips-{key}.npz"
        if cache.exists():
            data = np.load(cache)
            return cls(data["samples"], data["offsets"])
        bank = cls.of(read_audio(u.audio) for u in tqdm(utterances, desc="loading clips", unit="clip"))
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")  # torchrun ranks may write it at the same time
        np.savez(tmp, samples=bank.samples, offsets=bank.offsets)
        tmp.replace(cache)
        return bank

    def __len__(self):
        return len(self.offsets) - 1

    def hours(self, indices) -> float:
        return float(sum(self.offsets[i + 1] - self.offsets[i] for i in indices)) / SR / 3600

    def __getitem__(self, i) -> np.ndarray:
        return self.samples[self.offsets[i] : self.offsets[i + 1]].astype(np.float32) / 32768


@dataclass
class ClipPools:
    """Indices into one ClipBank: positives by keyword and origin ("real" / "tts") as (clip, sample
    where the keyword ends in a transcribed utterance, or None for a keyword clip), non-keyword clips
    by origin, the non-keyword clips kept out of training for threshold calibration, and the
    keywords that clips with a transcript say (never trained as filler there)."""

    bank: ClipBank
    positives: dict[str, dict[str, list[tuple[int, int | None]]]]
    negatives: dict[str, list[int]]
    calibration: list[int]
    said: dict[int, frozenset[str]] = field(default_factory=dict)


class ExampleMaker:
    """Builds training examples: (audio, keyword index or 0, sample where the keyword ends, the
    keywords its audio says elsewhere)."""

    def __init__(self, keywords, pools: ClipPools, augmenter, config: KWSTrainConfig, digit_augmenter=None):
        self.keywords = keywords
        self.pools = pools
        self.augmenter = augmenter
        self.digit_augmenter = digit_augmenter or augmenter
        self.config = config
        self.hard_negatives: list[tuple[int, int, int]] = []  # (clip, start, end) windows that fired

    @staticmethod
    def _pick(rng, by_origin: dict[str, list], real_fraction: float):
        real = bool(by_origin["real"]) and (not by_origin["tts"] or rng.random() < real_fraction)
        clips = by_origin["real" if real else "tts"]
        return clips[rng.integers(len(clips))]

    def negative_window(self, rng, max_s: float) -> tuple[int, int, int]:
        """(clip, start, end): up to `max_s` of a non-keyword clip's speech."""
        index = self._pick(rng, self.pools.negatives, self.config.real_negative_fraction)
        clip = self.pools.bank[index]
        start, end = loud_span(clip, 35.0)
        start, end, length = max(0, start - 1600), min(len(clip), end + 1600), int(max_s * SR)
        if end - start > length:
            start += int(rng.integers(end - start - length))
            end = start + length
        return int(index), int(start), int(end)

    def _negative(self, rng, max_s, hard=False) -> tuple[np.ndarray, frozenset]:
        if hard and self.hard_negatives and rng.random() < self.config.hard_negative_fraction:
            index, start, end = self.hard_negatives[rng.integers(len(self.hard_negatives))]
        else:
            index, start, end = self.negative_window(rng, max_s)
        return self.pools.bank[index][start:end], self.pools.said.get(index, frozenset())

    def _positive(self, rng, keyword) -> tuple[np.ndarray, int, frozenset]:
        """A keyword's speech (after what leads up to it in its recording), the sample where it ends,
        and the keywords its recording says."""
        index, end = self._pick(rng, self.pools.positives[keyword], self.config.real_positive_fraction)
        clip = self.pools.bank[index]
        if end is not None:  # said inside a transcribed utterance: cut there, after a lead-in of it
            clip = clip[max(0, end - int(self.config.lead_s * SR)) : end]
        options = {**self.config.augment_options, **(self.config.digit_augment_options if keyword in DIGITS else {})}
        if options.get("p_speed") and rng.random() < options["p_speed"]:
            clip = change_speed(clip, rng.uniform(*options.get("speed", Augmenter.speed)))
        s, e = loud_span(clip, 50.0)
        return clip[max(0, s - 1600) : e + 1600], min(s, 1600) + (e - s), self.pools.said.get(index, frozenset())

    def _background(self, rng, seconds: float) -> np.ndarray:
        """Non-speech: digital silence, or a real noise recording at -70..-20 dBFS."""
        length = max(1, int(seconds * SR))
        if rng.random() < 0.2:
            return np.zeros(length, np.float32)
        noise = self.augmenter.noise_segment(length)
        level = 10 ** (rng.uniform(-70, -20) / 20) / (np.sqrt(np.mean(noise**2)) + 1e-9)
        return (noise * level).astype(np.float32)

    def make(self, rng):
        config, long_s, said = self.config, self.config.background_s, frozenset()
        if config.background_fraction and rng.random() < config.background_fraction:
            return self.augmenter(self._background(rng, rng.uniform(1.0, long_s))), 0, 0, said
        if rng.random() < 0.5:
            lead, said = self._negative(rng, config.lead_s)
        elif config.background_fraction:  # the keyword may come after a long quiet stretch
            lead = self._background(rng, rng.uniform(0.1, 0.4 * long_s))
        else:
            lead = np.zeros(rng.integers(1600, 8000), np.float32)
        gap = np.zeros(rng.integers(800, 4800), np.float32)
        label, end, augmenter = 0, 0, self.augmenter
        if rng.random() < config.positive_fraction:
            label = int(rng.integers(len(self.keywords))) + 1
            clip, clip_end, clip_said = self._positive(rng, self.keywords[label - 1])
            end = len(lead) + len(gap) + clip_end
            if self.keywords[label - 1] in DIGITS:
                augmenter = self.digit_augmenter
        else:
            clip, clip_said = self._negative(rng, config.negative_s, hard=True)
        tail = [np.zeros(rng.integers(4800, 11200), np.float32)]
        if config.tail_s:  # a keyword is followed by a long stretch that must not fire again
            tail.append(self._background(rng, rng.uniform(0.0, config.tail_s)))
            if rng.random() < 0.5:
                speech, tail_said = self._negative(rng, config.negative_s)
                tail.append(speech)
                said |= tail_said
        return augmenter(np.concatenate([lead, gap, clip, *tail])), label, end, said | clip_said


def frame_of_sample(sample: int, features: FeatureConfig = FeatureConfig()) -> int:
    """The first encoder frame whose input reaches `sample`."""
    span, period = (round(s * features.sample_rate) for s in (features.frame_span_s, features.frame_s))
    return max(0, -(-(sample - span) // period))


def feature_batch(audios) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded log-mel features (b, 4T, n_mels) of 16 kHz clips, and their lengths in encoder frames."""
    feats = [log_mel(audio) for audio in audios]
    feats = [f[: f.shape[0] // SUBSAMPLING * SUBSAMPLING] for f in feats]
    lengths = torch.tensor([f.shape[0] // SUBSAMPLING for f in feats])
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


def make_batch(maker: ExampleMaker, rng, batch_size: int):
    """Features, lengths, labels, keyword-end frames, and the classes allowed outside the keyword
    window (b, K + 1): filler, and the keywords each example's audio says."""
    examples = [maker.make(rng) for _ in range(batch_size)]
    batch, lengths = feature_batch(audio for audio, *_ in examples)
    labels = torch.tensor([label for _, label, _, _ in examples])
    ends = torch.tensor([frame_of_sample(end) for _, _, end, _ in examples])
    allowed = torch.zeros(batch_size, len(maker.keywords) + 1, dtype=torch.bool)
    allowed[:, 0] = True
    for row, (*_, said) in enumerate(examples):
        for keyword in said:
            allowed[row, maker.keywords.index(keyword) + 1] = True
    return batch, lengths, labels, ends, allowed


def kws_loss(logits, lengths, labels, ends, allowed, before: int, after: int, smoothing: int):
    """Filler cross-entropy on every frame outside the window around a keyword's end (the
    keyword's own first part included, so nothing fires before the word is complete), where a
    keyword the example's audio says elsewhere (`allowed`) counts as filler + keyword cross-entropy
    at the best frame of the window. The keyword term uses the causal moving average of posteriors
    that the detector thresholds, so the model learns peaks it can see."""
    logp = logits.float().log_softmax(-1)
    frames = torch.arange(logits.shape[1])[None, :]
    valid = frames < lengths[:, None]
    positive = (labels > 0)[:, None]
    window = positive & (frames >= ends[:, None] - before) & (frames <= ends[:, None] + after) & valid
    filler = valid & ~window
    outside = logp.masked_fill(~allowed[:, None, :], float("-inf")).logsumexp(-1)
    filler_loss = -(outside * filler).sum() / filler.sum().clamp(min=1)
    keyword_p = logp.gather(2, labels[:, None, None].expand(-1, logits.shape[1], 1)).exp()  # (b, T, 1)
    smoothed = moving_average(keyword_p, smoothing)[..., 0]
    best = smoothed.clamp(min=1e-8).log().masked_fill(~window, -1e4).max(1).values
    has_window = window.any(1)
    keyword_loss = -(best * has_window).sum() / has_window.sum().clamp(min=1)
    return filler_loss + keyword_loss, filler_loss, keyword_loss


def labelled_train_audio(manifests) -> list[Utterance]:
    """Teacher-labelled untranscribed audio, less that of the eval parts' speakers."""
    if not manifests:
        return []
    held_speakers = eval_speakers()
    return [u for m in manifests for u in read_manifest(m) if u.speaker not in held_speakers]


def sort_clips(kept: list[tuple[str, Utterance]], keywords, calibration_percent: int):
    """ClipPools' indices for (origin, utterance) pairs: positives (keyword clips, and keywords that
    transcripts say where they can be placed), negatives, calibration (real speech by whole speaker,
    TTS clips by path hash) and the keywords each transcript says."""
    positives = {k: {"real": [], "tts": []} for k in keywords}
    negatives, calibration, said = {"real": [], "tts": []}, [], {}
    for i, (origin, u) in enumerate(kept):
        if u.keyword is not None:
            positives[u.keyword][origin].append((i, None))
            continue
        says = said_keywords(u.text, keywords)
        if says:
            said[i] = says
        held_back_by = u.speaker if origin == "real" and u.speaker else str(u.audio)
        if zlib.crc32(held_back_by.encode()) % 100 < calibration_percent:
            calibration.append(i)
            continue
        negatives[origin].append(i)
        for keyword, end in keyword_ends(u, [k for k in keywords if k in says]):  # None: the utterance's end
            positives[keyword][origin].append((i, int((u.duration if end is None else end) * SR)))
    return positives, negatives, calibration, said


def collect_data(config: KWSTrainConfig, cache_dir: Path) -> tuple[ClipPools, dict[str, float]]:
    """Keyword and non-keyword clips from the TTS manifests, the real train parts and the labelled
    audio, and the typical spoken length of each keyword."""
    keywords = config.keywords
    sources = [("tts", u) for m in config.manifests for u in read_manifest(m)]
    sources += [("real", u) for name in config.real_kws for u in real_kws_split(name)["train"]]
    sources += [("real", u) for name in config.real_speech for u in real_split(name)["train"]]
    sources += [("real", u) for u in labelled_train_audio(config.labels)]
    kept = [(origin, u) for origin, u in sources if u.keyword in keywords or (u.keyword is None and u.text)]
    bank = ClipBank.load([u for _, u in kept], cache_dir)
    positives, negatives, calibration, said = sort_clips(kept, keywords, config.calibration_percent)
    missing = [k for k, clips in positives.items() if not clips["real"] + clips["tts"]]
    if missing:
        raise ValueError(f"no training clips for keywords {missing}")
    if not negatives["real"] + negatives["tts"] or not calibration:
        raise ValueError("no non-keyword clips for training and calibration")
    durations = {}
    for k, clips in positives.items():
        whole = [i for i, end in clips["real"] + clips["tts"] if end is None][:200]  # keyword clips
        if whole:
            lengths = [np.subtract(*loud_span(bank[i], 50.0)[::-1]) for i in whole]
            durations[k] = round(float(np.median(lengths)) / SR, 3)
    return ClipPools(bank, positives, negatives, calibration, said), durations


@torch.no_grad()
def mine_hard_negatives(model, maker: ExampleMaker, rng, count: int, threshold: float, batch_size: int = 32):
    """Of `count` negative windows drawn as training draws them (unaugmented), those on which the
    smoothed posterior (the detector's) of a keyword the window does not say reaches `threshold`."""
    windows = [maker.negative_window(rng, maker.config.negative_s) for _ in range(count)]
    device, training = next(model.parameters()).device, model.training
    model.eval()
    fired = []
    for first in range(0, count, batch_size):
        part = windows[first : first + batch_size]
        batch, lengths = feature_batch(maker.pools.bank[i][s:e] for i, s, e in part)
        logits, _ = model(batch.to(device), lengths=lengths.to(device))
        smoothed = moving_average(logits.float().softmax(-1)[..., 1:].cpu(), model.config.smoothing_frames)
        valid = torch.arange(smoothed.shape[1])[None, :, None] < lengths[:, None, None]
        for window, peaks in zip(part, smoothed.masked_fill(~valid, 0).amax(1).tolist()):
            says = maker.pools.said.get(window[0], frozenset())
            if any(p >= threshold for k, p in zip(maker.keywords, peaks) if k not in says):
                fired.append(window)
    model.train(training)
    return fired


def data_summary(pools: ClipPools) -> dict:
    """Clips and hours of each pool, for the training log."""
    bank = pools.bank
    return {
        "negative_hours": {origin: round(bank.hours(clips), 3) for origin, clips in pools.negatives.items()},
        "negative_clips": {origin: len(clips) for origin, clips in pools.negatives.items()},
        "calibration_hours": round(bank.hours(pools.calibration), 3),
        "negatives_saying_keywords": sum(i in pools.said for clips in pools.negatives.values() for i in clips),
        "positives": {k: {o: len(c) for o, c in by_origin.items()} for k, by_origin in pools.positives.items()},
        "positives_from_transcripts": sum(
            end is not None for b in pools.positives.values() for c in b.values() for _, end in c
        ),
    }


def from_main_process(env, value):
    """`value` as the main process has it, in every process."""
    if env.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def example_augmenter(config: KWSTrainConfig, options: dict, seed: int) -> Augmenter:
    """The augmenter of whole examples (speed perturbation, which moves a keyword's end, is done on
    the keyword's clip by the ExampleMaker instead)."""
    return Augmenter(noise_dir=config.noise_dir, seed=seed, **{**options, "p_speed": 0.0})


def initial_weights(config: KWSTrainConfig) -> dict:
    """The weights of the `init_from` model, which must spot the config's keywords."""
    source = load_model(config.init_from)
    if source.config.keywords != config.keywords:
        raise ValueError(f"init_from {config.init_from} spots {source.config.keywords}, not the config's keywords")
    return source.state_dict()


def carried_streams(model, state, rng, continue_chance: float):
    """Each row's encoder `state` after its example, detached, where the row's stream goes on
    (chance `continue_chance`), else a fresh state: the model learns to listen for keywords after
    minutes of audio, as it must live, not only from a fresh start. None when no stream goes on."""
    if not continue_chance:
        return None
    goes_on = torch.from_numpy(rng.random(state.batch_size) < continue_chance)
    fresh = model.encoder.initial_state(state.batch_size)
    return state.detach().where(goes_on, fresh)


def train(config: KWSTrainConfig) -> Path:
    env = setup_distributed()
    torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    torch.manual_seed(config.seed)
    pools, durations = collect_data(config, out / "cache")
    model_config = KWSConfig(
        keywords=config.keywords, encoder=EncoderConfig(**config.encoder), keyword_durations=durations
    )
    if config.refractory_s is not None:
        model_config.refractory_s = config.refractory_s
    model = KWSModel(model_config).to(env.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    progress = load_checkpoint(out / "checkpoint", model, optimizer)
    if progress is None and config.init_from:
        model.load_state_dict(initial_weights(config))
    progress = progress or {"step": 0}
    trained = torch.nn.parallel.DistributedDataParallel(model) if env.world_size > 1 else model
    seed = config.seed + 1000 * env.rank + progress["step"]
    digit_options = {**config.augment_options, **config.digit_augment_options}
    maker = ExampleMaker(
        config.keywords,
        pools,
        example_augmenter(config, config.augment_options, seed),
        config,
        example_augmenter(config, digit_options, seed + 500) if config.digit_augment_options else None,
    )
    maker.hard_negatives = [tuple(window) for window in progress.get("hard_negatives", [])]
    rng = np.random.default_rng([config.seed, env.rank, progress["step"]])
    log = LossLog(out / "log.jsonl", enabled=env.is_main)
    if not progress["step"]:
        log.write(**data_summary(pools))
    bar = tqdm(
        range(progress["step"], config.steps),
        initial=progress["step"],
        total=config.steps,
        desc="training kws",
        disable=not env.is_main,
    )
    streams = None  # each batch row's encoder state, when its next example goes on from it
    for step in bar:
        if step in config.mining_steps:
            mining_rng = np.random.default_rng([config.seed, step, zlib.crc32(b"hard negatives")])
            mined = (
                mine_hard_negatives(model, maker, mining_rng, config.mining_windows, config.mining_threshold)
                if env.is_main
                else None
            )
            maker.hard_negatives = from_main_process(env, mined)
            log.write(mined_at_step=step, hard_negatives=len(maker.hard_negatives), mined_from=config.mining_windows)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, config.steps, config.lr, config.warmup)
        batch, lengths, labels, ends, allowed = make_batch(maker, rng, config.batch_size)
        logits, state = trained(batch.to(env.device), streams, lengths=lengths.to(env.device))
        streams = carried_streams(model, state, rng, config.stream_continue)
        loss, filler, keyword = kws_loss(
            logits.cpu(),
            lengths,
            labels,
            ends,
            allowed,
            config.window_before,
            config.window_after,
            model_config.smoothing_frames,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", filler=f"{filler.item():.3f}", kw=f"{keyword.item():.3f}")
        if step % config.log_every == 0:
            log.write(
                step=step,
                loss=loss.item(),
                filler=filler.item(),
                keyword=keyword.item(),
                lr=optimizer.param_groups[0]["lr"],
            )
        if env.is_main and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
            progress = {"step": step + 1, "config": asdict(config), "hard_negatives": maker.hard_negatives}
            save_checkpoint(out / "checkpoint", model, optimizer, progress)
    if not env.is_main:
        return out
    model.eval().cpu()
    clips = ((pools.bank[i], pools.said.get(i, frozenset())) for i in pools.calibration)
    peaks, hours = negative_peaks(model, clips, len(pools.calibration))
    groups = {k: keyword_group(k) if config.calibrate_by_group else k for k in config.keywords}
    target, ceiling = config.target_false_alarms_per_hour, config.threshold_ceiling
    model.config.thresholds = calibrate_thresholds(peaks, hours, target, groups, ceiling=ceiling)
    false_alarms = false_alarms_per_group(peaks, model.config.thresholds, groups)
    log.write(calibration_hours=hours, thresholds=model.config.thresholds, calibration_false_alarms=false_alarms)
    return save_model(model, config.model_dir)
