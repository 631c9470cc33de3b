"""Keyword-spotting evaluation: recall per keyword, false alarms per hour, latency, DET curve, RTF.

The model runs once over every clip and every negative stream; its per-frame posteriors are kept,
and the detector (cheap) is swept over thresholds on them, so every DET point is exactly what a
streaming run at that threshold would report.
"""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..audio import SAMPLE_RATE as SR, loud_span, read_audio
from ..data.manifest import Utterance, read_manifest
from ..data.splits import real_kws_split, real_split
from ..data.text import spoken_words
from ..decoding.keywords import KeywordDecoding, KeywordDetector
from ..extras import require
from ..features import SUBSAMPLING, FrontEnd
from ..models import load_model, resolve_model_dir
from ..recognizer import StreamingRecognizer
from ..sources import array_chunks
from ..text import words_of
from .sets import asterisk_prompts

PAD = np.zeros(SR // 2, np.float32)  # silence around each positive clip, as in a live stream
REPORT_SLACK_S = 0.5  # a keyword said at an utterance's end may be reported in the pause after it
SWEEP = np.round(np.concatenate([np.arange(0.05, 0.95, 0.05), np.arange(0.95, 1.0, 0.01)]), 3)


def keyword_end(audio: np.ndarray, floor_db: float = 40.0) -> float:
    """End of speech in a clip (s): the end of the last 10 ms frame within `floor_db` of the loudest one."""
    return loud_span(audio, floor_db)[1] / SR


@torch.no_grad()
def posteriors(model, audio: np.ndarray, chunk_s: float = 10.0) -> torch.Tensor:
    """Per-frame keyword posteriors (T, K) of one stream, computed chunk by chunk."""
    frontend, state, out = FrontEnd(model.config.features, SUBSAMPLING), model.initial_state(), []
    step = int(chunk_s * SR)
    for start in range(0, len(audio), step):
        features = frontend.accept(audio[start : start + step], SR)
        if features.shape[0]:
            logits, state = model(features[None], state)
            out.append(logits[0].softmax(-1)[:, 1:])
    tail = frontend.finish()
    if tail.shape[0]:
        logits, state = model(tail[None], state)
        out.append(logits[0].softmax(-1)[:, 1:])
    return torch.cat(out) if out else torch.zeros(0, len(model.config.keywords))


def new_detector(model, thresholds: dict) -> KeywordDetector:
    """The detector a stream of `model` gets, with these thresholds."""
    return KeywordDecoding(model, thresholds=thresholds).new_stream()


def detect(model, posterior: torch.Tensor, thresholds: dict):
    detector = new_detector(model, thresholds)
    return detector.accept(posterior) + detector.flush()


def positive_sets(names, keywords) -> dict[str, list[Utterance]]:
    """Named real eval parts (wwb, precise, fsdd) or manifests; only clips of known keywords."""
    sets = {}
    for name in names:
        utterances = real_kws_split(name)["eval"] if name in ("wwb", "precise", "fsdd") else read_manifest(name)
        sets[Path(name).parent.name if name.endswith(".jsonl") else name] = [
            u for u in utterances if u.keyword in keywords
        ]
    return sets


def negative_sets(names) -> dict[str, list[Utterance]]:
    """Speech that is not a keyword clip: "real" (held-out real speech: precise non-wake-words and
    the reader), "asterisk" (Debian's telephone prompts) or a manifest (its non-keyword clips)."""
    speech = lambda us: [u for u in us if u.keyword is None and u.text]
    sets = {}
    for name in names:
        if name == "real":
            sets[name] = speech(real_kws_split("precise")["eval"]) + speech(real_split("ljs-reread")["eval"])
        elif name == "asterisk":
            sets[name] = speech(asterisk_prompts())
        else:
            sets[Path(name).parent.name] = speech(read_manifest(name))
    return sets


@dataclass
class NegativeStream:
    """Non-keyword speech as one long stream, and which keywords each utterance really says."""

    audio: np.ndarray
    spans: list[tuple[float, float, frozenset]]  # (start s, end s, keywords whose words it says)

    @property
    def hours(self) -> float:
        return len(self.audio) / SR / 3600

    def false_alarms(self, detections) -> int:
        """Detections (keyword, time reported) not of a keyword said in the utterance they end in
        (or in the one before, if that ended at most REPORT_SLACK_S earlier)."""
        starts = [start for start, _, _ in self.spans]
        count = 0
        for keyword, time_s in detections:
            i = max(0, bisect.bisect_right(starts, time_s) - 1)
            said = self.spans[i][2] | (
                self.spans[i - 1][2] if i and time_s - self.spans[i - 1][1] <= REPORT_SLACK_S else frozenset()
            )
            count += keyword not in said
        return count


def negative_stream(utterances, keywords) -> NegativeStream:
    """Clips joined by 0.25 s pauses. A keyword whose words an utterance says (the "go" in "go
    home") is not a false alarm there; any other detection is."""
    pieces, spans, at = [], [], 0
    for u in utterances:
        audio = read_audio(u.audio)
        said = frozenset(k for k in keywords if words_of(k) in spoken_words(u.text))
        spans.append((at / SR, (at + len(audio)) / SR, said))
        pieces += [audio, PAD[: SR // 4]]
        at += len(audio) + SR // 4
    return NegativeStream(np.concatenate(pieces), spans)


def score_positives(model, sets):
    scored = {}
    for name, utterances in sets.items():
        rows = []
        for u in tqdm(utterances, desc=f"positives {name}", unit="clip"):
            audio = read_audio(u.audio)
            rows.append(
                (u.keyword, len(PAD) / SR + keyword_end(audio), posteriors(model, np.concatenate([PAD, audio, PAD])))
            )
        scored[name] = rows
    return scored


def score_negatives(model, sets):
    scored = {}
    for name, utterances in sets.items():
        stream = negative_stream(tqdm(utterances, desc=f"negatives {name}", unit="clip"), model.config.keywords)
        scored[name] = (stream, posteriors(model, stream.audio))
    return scored


def operating_point(model, positives, negatives, thresholds):
    per_set, latencies = {}, []
    report_delay = new_detector(model, thresholds).report_delay_s  # a peak is reported this much later
    for name, rows in positives.items():
        keywords = {}
        for keyword, end, post in rows:
            events = detect(model, post, thresholds)
            hit = [e for e in events if e.text == keyword]
            k = keywords.setdefault(keyword, {"clips": 0, "detected": 0, "confused": 0, "repeated": 0})
            k["clips"] += 1
            k["detected"] += bool(hit)
            k["confused"] += bool(events) and not hit
            k["repeated"] += len(hit) > 1  # one utterance must fire once
            if hit:
                latencies.append(hit[0].end + report_delay - end)
        total = sum(k["clips"] for k in keywords.values())
        per_set[name] = {
            "clips": total,
            "recall": sum(k["detected"] for k in keywords.values()) / max(1, total),
            "confusions": sum(k["confused"] for k in keywords.values()),
            "repeated": sum(k["repeated"] for k in keywords.values()),
            "keywords": {k: {**v, "recall": v["detected"] / v["clips"]} for k, v in keywords.items()},
        }
    false_alarms = {
        name: stream.false_alarms((e.text, e.end + report_delay) for e in detect(model, post, thresholds))
        for name, (stream, post) in negatives.items()
    }
    hours = sum(stream.hours for stream, _ in negatives.values())
    return {
        "positives": per_set,
        "false_alarms": false_alarms,
        "negative_hours": hours,
        "negative_hours_per_set": {name: stream.hours for name, (stream, _) in negatives.items()},
        "false_alarms_per_hour": sum(false_alarms.values()) / max(hours, 1e-9),
        "median_latency_s": float(np.median(latencies)) if latencies else None,
    }


def single_thread_rtf(model, audio: np.ndarray, chunk_ms: int) -> float:
    stream = StreamingRecognizer(model, threads=1).create_stream()
    started = time.perf_counter()
    for _ in stream.run(array_chunks(audio, SR, SR * chunk_ms // 1000)):
        pass
    return (time.perf_counter() - started) / (len(audio) / SR)


def plot_det(points, shipped, path):
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name in points[0]["miss_rate"]:
        ax.plot(
            [max(p["false_alarms_per_hour"], 0.01) for p in points],
            [p["miss_rate"][name] for p in points],
            marker=".",
            label=name,
        )
        ax.plot([max(shipped["false_alarms_per_hour"], 0.01)], [1 - shipped["positives"][name]["recall"]], "k*")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (0 drawn at 0.01)")
    ax.set_ylabel("miss rate")
    ax.set_title("DET: one threshold for all keywords (star: shipped thresholds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary_table(report) -> str:
    shipped = report["shipped_thresholds"]
    lines = ["| set | clips | recall | confusions | reported twice |", "|---|---|---|---|---|"]
    for name, row in shipped["positives"].items():
        lines.append(f"| {name} | {row['clips']} | {row['recall']:.1%} | {row['confusions']} | {row['repeated']} |")
    per_set = ", ".join(
        f"{name}: {count} in {shipped['negative_hours_per_set'][name]:.2f} h"
        for name, count in shipped["false_alarms"].items()
    )
    lines += [
        "",
        f"False alarms: {sum(shipped['false_alarms'].values())} in {shipped['negative_hours']:.2f} h of "
        f"negative audio ({shipped['false_alarms_per_hour']:.2f}/h; per set: {per_set}).",
        f"Median time from the keyword's end to its report: {shipped['median_latency_s']:.3f} s."
        if shipped["median_latency_s"] is not None
        else "",
        f"Model: {report['parameters']:,} parameters, {report['model_bytes']:,} bytes; single-thread RTF "
        f"{report['rtf_1_thread']:.4f} at {report['chunk_ms']} ms chunks.",
    ]
    return "\n".join(lines) + "\n"


def evaluate(model_dir, positive_names, negative_names, out, chunk_ms=160):
    torch.set_num_threads(1)
    model = load_model(model_dir)
    keywords = model.config.keywords
    positives = score_positives(model, positive_sets(positive_names, keywords))
    negatives = score_negatives(model, negative_sets(negative_names))
    shipped = operating_point(model, positives, negatives, StreamingRecognizer(model).thresholds)
    points = []
    for threshold in tqdm(SWEEP, desc="threshold sweep"):
        point = operating_point(model, positives, negatives, dict.fromkeys(keywords, float(threshold)))
        points.append(
            {
                "threshold": float(threshold),
                "false_alarms_per_hour": point["false_alarms_per_hour"],
                "miss_rate": {n: 1 - r["recall"] for n, r in point["positives"].items()},
            }
        )
    rtf_audio = next(iter(negatives.values()))[0].audio[: 600 * SR]  # up to 10 minutes
    folder = resolve_model_dir(model_dir)
    report = {
        "model": str(model_dir),
        "chunk_ms": chunk_ms,
        "shipped_thresholds": shipped,
        "det": points,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_bytes": (folder / "model.safetensors").stat().st_size,
        "rtf_1_thread": single_thread_rtf(model, rtf_audio, chunk_ms),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    plot_det(points, shipped, out / "det.png")
    (out / "summary.md").write_text(summary_table(report))
    return report
