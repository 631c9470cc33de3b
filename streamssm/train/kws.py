"""Train the keyword spotter: `python -m streamssm.train kws --config configs/kws.json`.

Each training example is built on the fly: some lead-in (other speech or silence), then either a
keyword clip or a non-keyword clip, then a pause; real noise, reverberation and gain come from the
augmenter. Frames after the keyword's end (a short window) are trained to the keyword with a
max-pooling loss (the best frame of the window counts), frames outside keywords to filler, and the
frames inside a keyword are left free. Real recordings are drawn with a set share of the examples,
so the many TTS clips do not drown them. Checkpoints resume; at the end, thresholds are calibrated
to a target false-alarm rate on non-keyword clips held back from training.
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
from tqdm import tqdm

from ..audio import SAMPLE_RATE as SR, loud_span, read_audio
from ..data.augment import Augmenter
from ..data.manifest import Utterance, read_manifest
from ..data.splits import real_kws_split, real_split
from ..data.keyword_clips import DEFAULT_KEYWORDS
from ..decoding.keywords import moving_average
from ..features import SUBSAMPLING, FeatureConfig, FrontEnd, log_mel
from ..models import KWSConfig, KWSModel, save_model
from ..nn.encoder import EncoderConfig
from ..text import words_of
from .common import (
    LossLog,
    cosine_lr,
    load_checkpoint,
    save_checkpoint,
    setup_distributed,
)


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
    real_speech: list[str] = field(default_factory=lambda: ["ljs-reread"])  # train part, as negatives
    noise_dir: str = "../shared/data/noise"
    steps: int = 6000
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 200
    positive_fraction: float = 0.6
    real_positive_fraction: float = 0.5  # of a keyword's examples, drawn from real clips when it has any
    real_negative_fraction: float = 0.3  # of the non-keyword examples, drawn from real speech
    calibration_percent: int = 10  # negatives kept out of training, by path hash, to set thresholds on
    background_fraction: float = 0.0  # examples of non-speech only (silence or real noise), up to background_s
    background_s: float = 10.0  # and, when background_fraction > 0, lead-ins of non-speech up to 0.4 of it
    window_before: int = 2  # frames before the keyword's end that may fire
    window_after: int = 5  # frames after it
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    threads: int = 2
    target_false_alarms_per_hour: float = 0.5

    @classmethod
    def from_file(cls, path) -> "KWSTrainConfig":
        return cls(**json.loads(Path(path).read_text()))


class ClipBank:
    """Audio clips held in memory as int16, cached on disk so restarts do not decode again."""

    def __init__(self, utterances: list[Utterance], cache_dir: Path):
        key = hashlib.sha1("\n".join(str(u.audio) for u in utterances).encode()).hexdigest()[:16]
        cache = cache_dir / f"clips-{key}.npz"
        if cache.exists():
            data = np.load(cache)
            self.samples, self.offsets = data["samples"], data["offsets"]
        else:
            clips = [
                (np.clip(read_audio(u.audio), -1, 1) * 32767).astype(np.int16)
                for u in tqdm(utterances, desc="loading clips", unit="clip")
            ]
            self.offsets = np.cumsum([0] + [len(c) for c in clips])
            self.samples = np.concatenate(clips) if clips else np.zeros(0, np.int16)
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")  # torchrun ranks may write it at the same time
            np.savez(tmp, samples=self.samples, offsets=self.offsets)
            tmp.replace(cache)

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i) -> np.ndarray:
        return self.samples[self.offsets[i] : self.offsets[i + 1]].astype(np.float32) / 32768


@dataclass
class ClipPools:
    """Indices into one ClipBank: keyword clips by keyword and origin ("real" / "tts"), non-keyword
    clips by origin, and the non-keyword clips kept out of training for threshold calibration."""

    bank: ClipBank
    positives: dict[str, dict[str, list[int]]]
    negatives: dict[str, list[int]]
    calibration: list[int]


class ExampleMaker:
    """Builds (audio, keyword index or 0, sample where the keyword ends) training examples."""

    def __init__(self, keywords, pools: ClipPools, augmenter, config: KWSTrainConfig):
        self.keywords = keywords
        self.pools = pools
        self.augmenter = augmenter
        self.config = config

    @staticmethod
    def _pick(rng, by_origin: dict[str, list[int]], real_fraction: float) -> int:
        real = bool(by_origin["real"]) and (not by_origin["tts"] or rng.random() < real_fraction)
        clips = by_origin["real" if real else "tts"]
        return clips[rng.integers(len(clips))]

    def _negative(self, rng, max_s):
        clip = self.pools.bank[self._pick(rng, self.pools.negatives, self.config.real_negative_fraction)]
        start, end = loud_span(clip, 35.0)
        clip = clip[max(0, start - 1600) : end + 1600]
        if len(clip) > max_s * SR:
            offset = rng.integers(len(clip) - int(max_s * SR))
            clip = clip[offset : offset + int(max_s * SR)]
        return clip

    def _background(self, rng, seconds: float) -> np.ndarray:
        """Non-speech: digital silence, or a real noise recording at -70..-20 dBFS."""
        length = max(1, int(seconds * SR))
        if rng.random() < 0.2:
            return np.zeros(length, np.float32)
        noise = self.augmenter.noise_segment(length)
        level = 10 ** (rng.uniform(-70, -20) / 20) / (np.sqrt(np.mean(noise**2)) + 1e-9)
        return (noise * level).astype(np.float32)

    def make(self, rng):
        long_s = self.config.background_s
        if self.config.background_fraction and rng.random() < self.config.background_fraction:
            return self.augmenter(self._background(rng, rng.uniform(1.0, long_s))), 0, 0
        if rng.random() < 0.5:
            lead = self._negative(rng, 1.2)
        elif self.config.background_fraction:  # the keyword may come after a long quiet stretch
            lead = self._background(rng, rng.uniform(0.1, 0.4 * long_s))
        else:
            lead = np.zeros(rng.integers(1600, 8000), np.float32)
        gap = np.zeros(rng.integers(800, 4800), np.float32)
        label, end = 0, 0
        if rng.random() < self.config.positive_fraction:
            label = int(rng.integers(len(self.keywords))) + 1
            by_origin = self.pools.positives[self.keywords[label - 1]]
            clip = self.pools.bank[self._pick(rng, by_origin, self.config.real_positive_fraction)]
            s, e = loud_span(clip, 50.0)
            clip = clip[max(0, s - 1600) : e + 1600]
            end = len(lead) + len(gap) + min(s, 1600) + (e - s)
        else:
            clip = self._negative(rng, 2.5)
        tail = np.zeros(rng.integers(4800, 11200), np.float32)
        audio = np.concatenate([lead, gap, clip, tail])
        return self.augmenter(audio), label, end


def frame_of_sample(sample: int, features: FeatureConfig = FeatureConfig()) -> int:
    """The first encoder frame whose input reaches `sample`."""
    span, period = (round(s * features.sample_rate) for s in (features.frame_span_s, features.frame_s))
    return max(0, -(-(sample - span) // period))


def make_batch(maker: ExampleMaker, rng, batch_size: int):
    examples = [maker.make(rng) for _ in range(batch_size)]
    feats = [log_mel(audio) for audio, *_ in examples]
    feats = [f[: f.shape[0] // SUBSAMPLING * SUBSAMPLING] for f in feats]
    lengths = torch.tensor([f.shape[0] // SUBSAMPLING for f in feats])
    batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    labels = torch.tensor([label for _, label, _ in examples])
    ends = torch.tensor([frame_of_sample(end) for _, _, end in examples])
    return batch, lengths, labels, ends


def kws_loss(logits, lengths, labels, ends, before: int, after: int, smoothing: int):
    """Filler cross-entropy on every frame outside the window around a keyword's end (the
    keyword's own first part included, so nothing fires before the word is complete) + keyword
    cross-entropy at the best frame of the window. The keyword term uses the causal moving
    average of posteriors that the detector thresholds, so the model learns peaks it can see."""
    logp = logits.float().log_softmax(-1)
    frames = torch.arange(logits.shape[1])[None, :]
    valid = frames < lengths[:, None]
    positive = (labels > 0)[:, None]
    window = positive & (frames >= ends[:, None] - before) & (frames <= ends[:, None] + after) & valid
    filler = valid & ~window
    filler_loss = -(logp[..., 0] * filler).sum() / filler.sum().clamp(min=1)
    keyword_p = logp.gather(2, labels[:, None, None].expand(-1, logits.shape[1], 1)).exp()  # (b, T, 1)
    smoothed = moving_average(keyword_p, smoothing)[..., 0]
    best = smoothed.clamp(min=1e-8).log().masked_fill(~window, -1e4).max(1).values
    has_window = window.any(1)
    keyword_loss = -(best * has_window).sum() / has_window.sum().clamp(min=1)
    return filler_loss + keyword_loss, filler_loss, keyword_loss


def collect_data(config: KWSTrainConfig, cache_dir: Path) -> tuple[ClipPools, dict[str, float]]:
    """Keyword and non-keyword clips from the TTS manifests and the real train parts, and the
    typical spoken length of each keyword."""
    sources = [("tts", u) for m in config.manifests for u in read_manifest(m)]
    sources += [("real", u) for name in config.real_kws for u in real_kws_split(name)["train"]]
    sources += [("real", u) for name in config.real_speech for u in real_split(name)["train"]]
    keyword_words = [words_of(k) for k in config.keywords]
    kept = [
        (origin, u)
        for origin, u in sources
        if u.keyword in config.keywords
        or (u.keyword is None and u.text and not any(k in words_of(u.text) for k in keyword_words))
    ]
    bank = ClipBank([u for _, u in kept], cache_dir)
    positives = {k: {"real": [], "tts": []} for k in config.keywords}
    negatives, calibration = {"real": [], "tts": []}, []
    for i, (origin, u) in enumerate(kept):
        if u.keyword is not None:
            positives[u.keyword][origin].append(i)
        elif zlib.crc32(str(u.audio).encode()) % 100 < config.calibration_percent:
            calibration.append(i)
        else:
            negatives[origin].append(i)
    missing = [k for k, clips in positives.items() if not clips["real"] + clips["tts"]]
    if missing:
        raise ValueError(f"no training clips for keywords {missing}")
    if not negatives["real"] + negatives["tts"] or not calibration:
        raise ValueError("no non-keyword clips for training and calibration")
    durations = {}
    for k, clips in positives.items():
        lengths = [np.subtract(*loud_span(bank[i], 50.0)[::-1]) for i in (clips["real"] + clips["tts"])[:200]]
        durations[k] = round(float(np.median(lengths)) / SR, 3)
    return ClipPools(bank, positives, negatives, calibration), durations


@torch.no_grad()
def negative_peaks(model, pools: ClipPools):
    """Streams the calibration clips through the model, one after another as one stream; per
    keyword, the peak smoothed posterior of each clip (smoothed as the detector does, across the
    clips' boundaries), and the hours streamed."""
    frontend, state = FrontEnd(model.config.features), model.initial_state()
    smoothing = model.config.smoothing_frames
    peaks = {k: [] for k in model.config.keywords}
    samples, before = 0, None
    for i in tqdm(pools.calibration, desc="calibrating on held-back negatives", unit="clip"):
        audio = np.concatenate([pools.bank[i], np.zeros(4000, np.float32)])
        samples += len(audio)
        features = frontend.accept(audio, SR)
        if features.shape[0] == 0:
            continue
        logits, state = model(features[None], state)
        posteriors = logits.softmax(-1)[0, :, 1:]  # (T, K)
        smoothed = moving_average(posteriors, smoothing, before).amax(0)
        before = posteriors if before is None else torch.cat([before, posteriors])[-smoothing:]
        for k, value in zip(model.config.keywords, smoothed.tolist()):
            peaks[k].append(value)
    return peaks, samples / SR / 3600


def calibrate_thresholds(peaks, hours, target_per_hour, floor=0.3, ceiling=0.95):
    """Per keyword, the lowest threshold whose false alarms on the negatives stay under the target."""
    allowed = int(target_per_hour * hours)
    thresholds = {}
    for keyword, values in peaks.items():
        ranked = sorted(values, reverse=True)
        threshold = ranked[allowed] + 1e-3 if len(ranked) > allowed else floor
        thresholds[keyword] = round(min(ceiling, max(floor, threshold)), 3)
    return thresholds


def train(config: KWSTrainConfig) -> Path:
    env = setup_distributed()
    torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    torch.manual_seed(config.seed)
    pools, durations = collect_data(config, out / "cache")
    model_config = KWSConfig(
        keywords=config.keywords, encoder=EncoderConfig(**config.encoder), keyword_durations=durations
    )
    model = KWSModel(model_config).to(env.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    progress = load_checkpoint(out / "checkpoint", model, optimizer) or {"step": 0}
    trained = torch.nn.parallel.DistributedDataParallel(model) if env.world_size > 1 else model
    augmenter = Augmenter(noise_dir=config.noise_dir, seed=config.seed + 1000 * env.rank + progress["step"])
    maker = ExampleMaker(config.keywords, pools, augmenter, config)
    rng = np.random.default_rng([config.seed, env.rank, progress["step"]])
    log = LossLog(out / "log.jsonl", enabled=env.is_main)
    bar = tqdm(
        range(progress["step"], config.steps),
        initial=progress["step"],
        total=config.steps,
        desc="training kws",
        disable=not env.is_main,
    )
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, config.steps, config.lr, config.warmup)
        batch, lengths, labels, ends = make_batch(maker, rng, config.batch_size)
        logits, _ = trained(batch.to(env.device), lengths=lengths.to(env.device))
        loss, filler, keyword = kws_loss(
            logits.cpu(),
            lengths,
            labels,
            ends,
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
            save_checkpoint(out / "checkpoint", model, optimizer, {"step": step + 1, "config": asdict(config)})
    if not env.is_main:
        return out
    model.eval().cpu()
    peaks, hours = negative_peaks(model, pools)
    model.config.thresholds = calibrate_thresholds(peaks, hours, config.target_false_alarms_per_hour)
    log.write(calibration_hours=hours, thresholds=model.config.thresholds)
    return save_model(model, config.model_dir)
