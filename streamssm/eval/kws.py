"""Keyword-spotting evaluation: recall per keyword, false alarms per hour, latency, DET curve, RTF.

The model runs once over every clip and every negative stream; what its keyword decoding detects
on is kept (a spotter's per-frame keyword posteriors, or for keywords given as text the keyword
search's per-frame scores), and the detection (cheap) is swept over thresholds on it, so every DET
point is exactly what a streaming run at that threshold would report.
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
from ..data.keyword_clips import keyword_group
from ..data.splits import real_kws_split, real_split, shared_data_dir
from ..data.text import spoken_words
from ..features import SUBSAMPLING, FrontEnd
from ..models import resolve_model_dir
from ..recognizer import StreamingRecognizer
from ..sources import array_chunks
from ..text import words_of
from .kws_views import PICOVOICE_SNR_DB, add_noise, group_point, picovoice_order, picovoice_report
from .kws_views import plot_curves, plot_views, views_summary
from .sets import speech_set

PAD = np.zeros(SR // 2, np.float32)  # silence around each positive clip, as in a live stream
REPORT_SLACK_S = 0.5  # a keyword said at an utterance's end may be reported in the pause after it
SWEEP = np.round(np.concatenate([np.arange(0.05, 0.95, 0.05), np.arange(0.95, 1.0, 0.01)]), 3)


def keyword_end(audio: np.ndarray, floor_db: float = 40.0) -> float:
    """End of speech in a clip (s): the end of the last 10 ms frame within `floor_db` of the loudest one."""
    return loud_span(audio, floor_db)[1] / SR


@torch.no_grad()
def posteriors(recognizer, audio: np.ndarray, chunk_s: float = 10.0):
    """What the recognizer's keyword decoding detects on (its `tracks`: per-frame keyword
    posteriors or scores) of one stream through the recognizer's backend, computed chunk by chunk."""
    backend, config = recognizer.backend, recognizer.model.config
    frontend, state, out = FrontEnd(config.features, SUBSAMPLING, backend.analysis), backend.initial_state(), []
    step = int(chunk_s * SR)
    for start in range(0, len(audio) + step, step):  # the last piece is the front end's tail
        features = frontend.accept(audio[start : start + step], SR) if start < len(audio) else frontend.finish()
        if features.shape[0]:
            logits, state = backend(features[None], state, torch.tensor([features.shape[0] // SUBSAMPLING]))
            out.append(logits[0])
    return recognizer.decoding.tracks(torch.cat(out))


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
    the reader), a named set of real speech of the evaluations (`sets.NAMED_SETS`: "asterisk",
    Debian's telephone prompts; "speechocean762", ...) or a manifest (its non-keyword clips)."""
    speech = lambda us: [u for u in us if u.keyword is None and u.text]
    sets = {}
    for name in names:
        if name == "real":
            sets[name] = speech(real_kws_split("precise")["eval"]) + speech(real_split("ljs-reread")["eval"])
        else:
            label, utterances = speech_set(name)
            sets[label] = speech(utterances)
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


def score_positives(recognizer, sets):
    scored = {}
    for name, utterances in sets.items():
        rows = []
        for u in tqdm(utterances, desc=f"positives {name}", unit="clip"):
            audio = read_audio(u.audio)
            padded = np.concatenate([PAD, audio, PAD])
            rows.append((u.keyword, len(PAD) / SR + keyword_end(audio), posteriors(recognizer, padded)))
        scored[name] = rows
    return scored


def score_negatives(recognizer, sets):
    scored = {}
    for name, utterances in sets.items():
        stream = negative_stream(tqdm(utterances, desc=f"negatives {name}", unit="clip"), recognizer.keywords)
        scored[name] = (stream, posteriors(recognizer, stream.audio))
    return scored


def operating_point(decoding, positives, negatives, thresholds):
    """Recall, false alarms and latency of a recognizer's keyword `decoding` at `thresholds`."""
    per_set, latencies = {}, []
    report_delay = decoding.report_delay_s  # a peak is reported this much later
    for name, rows in positives.items():
        keywords = {}
        for keyword, end, post in rows:
            events = decoding.detect(post, thresholds)
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
        name: stream.false_alarms((e.text, e.end + report_delay) for e in decoding.detect(post, thresholds))
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


def single_thread_rtf(recognizer, audio: np.ndarray, chunk_ms: int) -> float:
    stream = recognizer.create_stream()
    started = time.perf_counter()
    for _ in stream.run(array_chunks(audio, SR, SR * chunk_ms // 1000)):
        pass
    return (time.perf_counter() - started) / (len(audio) / SR)


def plot_det(points, shipped, path):
    curves = {
        name: [(p["false_alarms_per_hour"], p["miss_rate"][name]) for p in points] for name in points[0]["miss_rate"]
    }
    stars = {name: (shipped["false_alarms_per_hour"], 1 - row["recall"]) for name, row in shipped["positives"].items()}
    plot_curves(curves, stars, "DET: one threshold for all keywords (star: shipped thresholds)", path)


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
        f"Model: {report['parameters']:,} parameters, {report['model_bytes']:,} bytes; {report['backend']} "
        f"backend; single-thread RTF {report['rtf_1_thread']:.4f} at {report['chunk_ms']} ms chunks.",
    ]
    return "\n".join(lines) + "\n" + views_summary(report)


def picovoice_view(recognizer, positive_names, background_names, seed=0) -> dict:
    """The wake-word clips of the positive sets between the utterances of the background sets, real
    noise under all of it at PICOVOICE_SNR_DB (kws_views: the Picovoice protocol)."""
    keywords = recognizer.keywords
    clips = [u for us in positive_sets(positive_names, keywords).values() for u in us]
    clips = [u for u in clips if keyword_group(u.keyword) == "wake words"]
    background = [u for us in negative_sets(background_names).values() for u in us]
    utterances, placed = picovoice_order(clips, background, seed)
    stream = negative_stream(tqdm(utterances, desc="picovoice stream", unit="clip"), keywords)
    stream = NegativeStream(add_noise(stream.audio, shared_data_dir() / "noise", PICOVOICE_SNR_DB, seed), stream.spans)
    post = posteriors(recognizer, stream.audio)
    return picovoice_report(recognizer.decoding, stream, post, placed, keywords, SWEEP, REPORT_SLACK_S)


def evaluate(
    model_dir, positive_names, negative_names, out, chunk_ms=160, backend="torch", keywords=None, picovoice=None
):
    """Evaluate the keyword spotting of `model_dir` (a spotter; or an ASR model, whose `keywords`
    are then text) reporting `keywords` (default: all a spotter knows); with `picovoice` (negative
    set names), the Picovoice protocol's view on that background speech too."""
    torch.set_num_threads(1)
    recognizer = StreamingRecognizer.from_pretrained(model_dir, backend=backend, keywords=keywords)
    model, keywords, decoding = recognizer.model, recognizer.keywords, recognizer.decoding
    positives = score_positives(recognizer, positive_sets(positive_names, keywords))
    negatives = score_negatives(recognizer, negative_sets(negative_names))
    shipped = operating_point(decoding, positives, negatives, recognizer.thresholds)
    points = []
    for threshold in tqdm(SWEEP, desc="threshold sweep"):
        point = operating_point(decoding, positives, negatives, dict.fromkeys(keywords, float(threshold)))
        points.append(
            {
                "threshold": float(threshold),
                "false_alarms_per_hour": point["false_alarms_per_hour"],
                "miss_rate": {n: 1 - r["recall"] for n, r in point["positives"].items()},
            }
        )
    by_group = []
    for threshold in tqdm(SWEEP, desc="threshold sweep by keyword group"):
        point = group_point(decoding, positives, negatives, keywords, dict.fromkeys(keywords, float(threshold)))
        by_group.append({"threshold": float(threshold), **point})
    rtf_audio = next(iter(negatives.values()))[0].audio[: 600 * SR]  # up to 10 minutes
    folder = resolve_model_dir(model_dir)
    report = {
        "model": str(model_dir),
        "keywords": keywords,
        "backend": recognizer.backend.name,
        "chunk_ms": chunk_ms,
        "shipped_thresholds": shipped,
        "det": points,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_bytes": (folder / "model.safetensors").stat().st_size,
        "rtf_1_thread": single_thread_rtf(recognizer, rtf_audio, chunk_ms),
        "groups_at_shipped_thresholds": group_point(decoding, positives, negatives, keywords, recognizer.thresholds),
        "det_by_group": by_group,
    }
    if picovoice:
        report["picovoice"] = picovoice_view(recognizer, positive_names, picovoice)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    plot_det(points, shipped, out / "det.png")
    plot_views(report, out)
    (out / "summary.md").write_text(summary_table(report))
    return report
