"""Keyword-spotting results as a wake-word user reads them, beside `eval.kws`'s overall numbers.

- Per keyword group (wake words, commands, digits) and per keyword: false alarms per hour on each
  negative set, recall, and a DET curve per group (one threshold for all keywords swept).
- The Picovoice wake-word benchmark's protocol: every wake-word clip placed between the utterances
  of long real background speech, real noise under all of it at 10 dB SNR; per wake word, the miss
  rate at 1 false alarm per 10 hours and at 0.5 per hour (the lowest miss rate of the swept
  thresholds whose false alarms stay under the rate; none when no threshold does).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..data.augment import Augmenter
from ..data.keyword_clips import KEYWORD_GROUPS, keyword_group
from ..extras import require

PICOVOICE_SNR_DB = 10.0
PICOVOICE_RATES = {"1 per 10 h": 0.1, "0.5 per h": 0.5}  # false alarms per hour at which misses are read


def false_alarm_keywords(stream, events, report_delay: float) -> Counter:
    """How many of `events` (on a NegativeStream) are false alarms, per keyword."""
    return Counter(e.text for e in events if stream.false_alarms([(e.text, e.end + report_delay)]))


def group_point(decoding, positives, negatives, keywords, thresholds) -> dict:
    """At `thresholds`: per keyword, false alarms (per negative set) and clips detected; per group,
    false alarms per hour (over all negative sets and per set) and the miss rate of its clips."""
    delay = decoding.report_delay_s
    false_alarms = {
        name: false_alarm_keywords(stream, decoding.detect(post, thresholds), delay)
        for name, (stream, post) in negatives.items()
    }
    hours = {name: stream.hours for name, (stream, _) in negatives.items()}
    clips, detected = Counter(), Counter()
    for rows in positives.values():
        for keyword, _, post in rows:
            clips[keyword] += 1
            detected[keyword] += any(e.text == keyword for e in decoding.detect(post, thresholds))
    per_keyword = {
        k: {
            "false_alarms": {name: counts[k] for name, counts in false_alarms.items()},
            "false_alarms_per_hour": sum(counts[k] for counts in false_alarms.values())
            / max(sum(hours.values()), 1e-9),
            "clips": clips[k],
            "detected": detected[k],
        }
        for k in keywords
    }
    groups = {}
    for group in KEYWORD_GROUPS:
        members = [k for k in keywords if keyword_group(k) == group]
        if members:
            count = lambda name: sum(false_alarms[name][k] for k in members)
            group_clips = sum(clips[k] for k in members)
            groups[group] = {
                "keywords": members,
                "false_alarms_per_hour": sum(map(count, false_alarms)) / max(sum(hours.values()), 1e-9),
                "false_alarms_per_hour_per_set": {name: count(name) / max(h, 1e-9) for name, h in hours.items()},
                "miss_rate": 1 - sum(detected[k] for k in members) / group_clips if group_clips else None,
            }
    return {"hours": hours, "keywords": per_keyword, "groups": groups}


def picovoice_order(clips, background, seed: int = 0):
    """The background utterances with the clips (in a seeded order, each as an utterance whose text
    is its keyword) spread evenly between them, and (position in that list, keyword) of each clip."""
    shuffled = [clips[i] for i in np.random.default_rng(seed).permutation(len(clips))]
    spread = [((j + 1) * len(background) / (len(clips) + 1), 1, c) for j, c in enumerate(shuffled)]
    slots = sorted([(i, 0, u) for i, u in enumerate(background)] + spread, key=lambda slot: slot[:2])
    utterances = [replace(u, text=u.keyword) if is_clip else u for _, is_clip, u in slots]
    return utterances, [(i, u.keyword) for i, (_, is_clip, u) in enumerate(slots) if is_clip]


def add_noise(audio: np.ndarray, noise_dir, snr_db: float, seed: int = 0, piece_s: float = 60.0) -> np.ndarray:
    """Real noise recordings under all of `audio`, `snr_db` below its power, added a minute at a time
    (a long stream needs no second copy of itself)."""
    augmenter = Augmenter(noise_dir=noise_dir, seed=seed)
    power = float(np.dot(audio, audio)) / max(1, len(audio))
    out, step = audio.copy(), int(piece_s * SR)
    for start in range(0, len(audio), step):
        noise = augmenter.noise_segment(len(out[start : start + step]))
        scale = np.sqrt(power / ((float(np.dot(noise, noise)) / len(noise) + 1e-20) * 10 ** (snr_db / 10)))
        out[start : start + step] += (noise * scale).astype(np.float32)
    return np.clip(out, -1, 1)


def picovoice_report(decoding, stream, post, clips, keywords, sweep, slack_s: float) -> dict:
    """Per wake word of the `clips` ((position in the stream's spans, keyword)): its miss rate and
    false alarms per hour at each swept threshold (one for all keywords), and the miss rate at each
    of PICOVOICE_RATES."""
    delay, hours = decoding.report_delay_s, stream.hours
    clip_keywords = [keyword for _, keyword in clips]
    wake = [k for k in keywords if k in clip_keywords]
    curves = {k: [] for k in wake}
    for threshold in sweep:
        events = decoding.detect(post, dict.fromkeys(keywords, float(threshold)))
        false_alarms = false_alarm_keywords(stream, events, delay)
        reported = [(e.text, e.end + delay) for e in events]
        hits = Counter()
        for i, keyword in clips:
            start, end, _ = stream.spans[i]
            hits[keyword] += any(k == keyword and start <= t <= end + slack_s for k, t in reported)
        for k in wake:
            curves[k].append(
                {
                    "threshold": float(threshold),
                    "false_alarms_per_hour": false_alarms[k] / hours,
                    "miss_rate": 1 - hits[k] / clip_keywords.count(k),
                }
            )
    at_rate = lambda curve, rate: min(
        (p["miss_rate"] for p in curve if p["false_alarms_per_hour"] <= rate), default=None
    )
    return {
        "hours": hours,
        "snr_db": PICOVOICE_SNR_DB,
        "wake_words": {
            k: {
                "clips": clip_keywords.count(k),
                "curve": curve,
                **{n: at_rate(curve, r) for n, r in PICOVOICE_RATES.items()},
            }
            for k, curve in curves.items()
        },
    }


def plot_curves(curves: dict, stars: dict, title: str, path: Path) -> None:
    """Miss rate against false alarms per hour (log), one line per name of `curves` ([(fa/h, miss)])
    and a star per name of `stars`."""
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in curves.items():
        ax.plot([max(fa, 0.01) for fa, _ in points], [miss for _, miss in points], marker=".", label=name)
        if name in stars:
            ax.plot([max(stars[name][0], 0.01)], [stars[name][1]], "k*")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (0 drawn at 0.01)")
    ax.set_ylabel("miss rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_views(report: dict, out: Path) -> None:
    """det-<group>.png per keyword group with clips, picovoice.png when the report has that view."""
    shipped = report["groups_at_shipped_thresholds"]["groups"]
    for group, row in shipped.items():
        if row["miss_rate"] is None:
            continue
        points = [
            (p["groups"][group]["false_alarms_per_hour"], p["groups"][group]["miss_rate"])
            for p in report["det_by_group"]
        ]
        star = {group: (row["false_alarms_per_hour"], row["miss_rate"])}
        title = f"DET, {group} (one threshold for all; star: shipped thresholds)"
        plot_curves({group: points}, star, title, out / f"det-{group.replace(' ', '-')}.png")
    if "picovoice" in report:
        curves = {
            k: [(p["false_alarms_per_hour"], p["miss_rate"]) for p in row["curve"]]
            for k, row in report["picovoice"]["wake_words"].items()
        }
        plot_curves(
            curves,
            {},
            f"Picovoice protocol: wake words in real speech, noise at {PICOVOICE_SNR_DB:g} dB",
            out / "picovoice.png",
        )


def views_summary(report: dict) -> str:
    """Markdown lines: false alarms per hour per group and set at the shipped thresholds, the keywords
    that fire most, and the Picovoice miss rates."""
    shipped = report["groups_at_shipped_thresholds"]
    sets = list(shipped["hours"])
    lines = [
        "",
        "False alarms per hour by keyword group (shipped thresholds):",
        "",
        "| group | " + " | ".join(f"{s} ({shipped['hours'][s]:.2f} h)" for s in sets) + " | all | miss rate |",
        "|---|" + "---|" * (len(sets) + 2),
    ]
    for group, row in shipped["groups"].items():
        per_set = " | ".join(f"{row['false_alarms_per_hour_per_set'][s]:.2f}" for s in sets)
        miss = f"{row['miss_rate']:.1%}" if row["miss_rate"] is not None else "-"
        lines.append(f"| {group} | {per_set} | {row['false_alarms_per_hour']:.2f} | {miss} |")
    firing = sorted(shipped["keywords"].items(), key=lambda item: -item[1]["false_alarms_per_hour"])
    top = ", ".join(f"{k} {row['false_alarms_per_hour']:.2f}" for k, row in firing[:8] if row["false_alarms_per_hour"])
    lines += ["", f"Most false alarms per hour: {top or 'none'}."]
    if "picovoice" in report:
        view = report["picovoice"]
        names = list(PICOVOICE_RATES)
        lines += [
            "",
            f"Picovoice protocol ({view['hours']:.2f} h of real speech, noise at {view['snr_db']:g} dB SNR): miss rate at",
            "",
            "| wake word | clips | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for k, row in view["wake_words"].items():
            misses = " | ".join("-" if row[n] is None else f"{row[n]:.1%}" for n in names)
            lines.append(f"| {k} | {row['clips']} | {misses} |")
    return "\n".join(lines) + "\n"
