"""Keywords from text against the trained keyword head, on the same real audio.

    python benchmarks/text_keywords.py                                   # writes text_keywords.md / .json
    python benchmarks/text_keywords.py --negatives real --out /tmp/tk    # a shorter development run
    python benchmarks/text_keywords.py --calibrate    # LEVEL of the text thresholds, on other real speech

The six wake words of the wwb recordings are given as text to the asr model
(`StreamingRecognizer.from_pretrained("asr", keywords=[...])`: the CTC keyword search of
streamssm/decoding/keyword_search.py, as for a word no model was trained on) and, side by side, to
the kws model that was trained on them (the same keywords=[...], so only they are reported). Both
go through `python -m streamssm.eval kws` (streamssm/eval/kws.py): recall on the wwb eval clips,
false alarms per hour on the negative sets, a DET sweep of one threshold for all keywords, and the
single-thread RTF of a stream. The search's own cost is timed apart, on made-up log-probabilities
in 160 ms chunks. Each model's full report lands in --out/<model>/. The text thresholds' LEVEL
(decoding/keyword_search.py) was set with --calibrate on CALIBRATION, real speech kept out of the
negatives reported here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from machine import describe  # benchmarks/machine.py

from streamssm.decoding.keyword_search import SPREAD, KeywordSearch, letters
from streamssm.eval.kws import evaluate, negative_sets, score_negatives
from streamssm.recognizer import StreamingRecognizer

HERE = Path(__file__).resolve().parent
WAKE_WORDS = ["alexa", "computer", "jarvis", "smart mirror", "snowboy", "view glass"]
MODELS = {"asr": "text: CTC keyword search on the asr model", "kws": "trained: the kws model's own head"}
TARGET_FA_PER_HOUR = 1.0  # the target for text keywords: recall >= 85 % at <= 1 false alarm per hour
QUIET_LOAD = 1.0  # RTF is recorded as clean only when the load average was below this at the start
CALIBRATION = ["vctk-p239", "commonvoice-extra"]  # held-out real speech for --calibrate, not reported


def calibrate() -> None:
    """Print the lowest LEVEL at which no wake word fires on the CALIBRATION sets."""
    torch.set_num_threads(1)
    recognizer = StreamingRecognizer.from_pretrained("asr", keywords=WAKE_WORDS)
    streams = score_negatives(recognizer, negative_sets(CALIBRATION))
    best = np.max([scores.max(0) for _, (scores, _) in streams.values()], axis=0)  # per keyword
    levels = {k: math.log(s) - SPREAD / math.sqrt(letters(k)) for k, s in zip(WAKE_WORDS, best)}
    hours = sum(stream.hours for stream, _ in streams.values())
    print(f"{hours:.2f} h of {', '.join(CALIBRATION)}; level at which each would fire: {levels}")
    print(f"LEVEL >= {max(levels.values()):.3f}")


def search_rtf(seconds: float = 600.0, chunk_frames: int = 4) -> float:
    """CPU seconds per second of audio of the keyword search alone (six keywords, one stream)."""
    recognizer = StreamingRecognizer.from_pretrained("asr", keywords=WAKE_WORDS)
    search: KeywordSearch = recognizer.decoding
    frames = round(seconds / search.frame_s)
    logprobs = torch.randn(1, frames, recognizer.model.config.vocab_size).log_softmax(-1)
    stream, started = search.new_stream(), time.process_time()
    for at in range(0, frames, chunk_frames):
        piece = logprobs[:, at : at + chunk_frames]
        search.decode(piece, torch.tensor([piece.shape[1]]), [stream])
    return (time.process_time() - started) / seconds


def best_point(report: dict) -> str:
    """The DET point (one threshold for all keywords) with the most wwb recall at no more than
    TARGET_FA_PER_HOUR: chosen on the evaluation audio itself, so an upper bound."""
    points = [p for p in report["det"] if p["false_alarms_per_hour"] <= TARGET_FA_PER_HOUR]
    if not points:
        return "none reaches it"
    point = max(points, key=lambda p: (1 - p["miss_rate"]["wwb"], -p["threshold"]))
    return (
        f"{1 - point['miss_rate']['wwb']:.1%} (threshold {point['threshold']}, {point['false_alarms_per_hour']:.2f}/h)"
    )


def table(results: dict) -> str:
    text, trained = results["asr"], results["kws"]
    quiet = results["load_average"] < QUIET_LOAD
    rtf = lambda r: (
        f"{r['rtf_1_thread']:.4f}" if quiet else f"pending (busy machine; {r['rtf_1_thread']:.4f} under load)"
    )
    lines = [
        "# Keywords from text vs the trained head (wwb wake words)",
        "",
        f"`{results['command']}`, {results['date']}, {results['machine']}; load average at the start "
        f"{results['load_average']:.2f}.",
        "",
        "Recall on the wwb eval clips at each path's own thresholds (text: from the keyword's length,",
        "`default_threshold`; trained: the kws model's calibrated ones):",
        "",
        "| keyword | clips | text (asr CTC search) | trained (kws head) |",
        "|---|---|---|---|",
    ]
    wwb = [r["shipped_thresholds"]["positives"]["wwb"] for r in (text, trained)]
    for keyword in WAKE_WORDS:
        a, b = (w["keywords"][keyword] for w in wwb)
        lines.append(f"| {keyword} | {a['clips']} | {a['recall']:.1%} | {b['recall']:.1%} |")
    lines.append(f"| all | {wwb[0]['clips']} | {wwb[0]['recall']:.1%} | {wwb[1]['recall']:.1%} |")
    shipped = [r["shipped_thresholds"] for r in (text, trained)]
    hours = ", ".join(f"{n} {h:.2f} h" for n, h in shipped[0]["negative_hours_per_set"].items())
    row = lambda label, a, b: f"| {label} | {a} | {b} |"
    lines += [
        "",
        f"On the same audio ({hours}):",
        "",
        "| | text (asr CTC search) | trained (kws head) |",
        "|---|---|---|",
        row("false alarms", *(sum(s["false_alarms"].values()) for s in shipped)),
        row("false alarms per hour", *(f"{s['false_alarms_per_hour']:.2f}" for s in shipped)),
        row(
            f"best recall at <= {TARGET_FA_PER_HOUR:g} false alarm/h, one threshold for all (chosen on this audio)",
            *(best_point(r) for r in (text, trained)),
        ),
        row("median time from the keyword's end to its report (s)", *(f"{s['median_latency_s']:.3f}" for s in shipped)),
        row(f"single-thread RTF of a stream, {text['chunk_ms']} ms chunks", rtf(text), rtf(trained)),
        row(
            "CPU seconds of the keyword search alone per second of audio (6 keywords)",
            f"{results['search_rtf']:.4f}",
            "",
        ),
        row("state per stream (bytes)", *(f"{results['state_nbytes'][m]:,}" for m in MODELS)),
        row("model parameters", *(f"{r['parameters']:,}" for r in (text, trained))),
        "",
        "DET curves and full reports: `text_keywords/asr/` (text) and `text_keywords/kws/` (trained).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--negatives", nargs="+", default=["real", "asterisk", "speechocean762"])
    parser.add_argument("--calibrate", action="store_true", help="print LEVEL from the calibration sets, and stop")
    parser.add_argument("--chunk-ms", type=int, default=160)
    parser.add_argument("--out", default=str(HERE / "text_keywords"))
    args = parser.parse_args(argv)
    if args.calibrate:
        return calibrate()
    out = Path(args.out)
    results = {
        "command": "python benchmarks/text_keywords.py"
        + (f" --negatives {' '.join(args.negatives)}" if args.negatives != parser.get_default("negatives") else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe(),
        "load_average": os.getloadavg()[0],
        "keywords": WAKE_WORDS,
        "negatives": args.negatives,
    }
    for model in MODELS:
        report = evaluate(model, ["wwb"], args.negatives, out / model, args.chunk_ms, keywords=WAKE_WORDS)
        results[model] = {k: report[k] for k in ("shipped_thresholds", "det", "chunk_ms", "rtf_1_thread", "parameters")}
    results["search_rtf"] = search_rtf()
    results["state_nbytes"] = {
        m: StreamingRecognizer.from_pretrained(m, keywords=WAKE_WORDS).create_stream().state_nbytes for m in MODELS
    }
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(table(results))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
