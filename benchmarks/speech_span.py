"""The energy rule that places speech for the ASR evaluation's latencies (`speech_span` in
streamssm/eval/asr.py), checked against a teacher's word times.

    python benchmarks/speech_span.py          # writes speech_span.md / .json (needs pip install ".[distill]")

On each named evaluation set of `eval asr` (every n-th utterance, n its size // 100, at least 1), Whisper tiny.en's
word times (`python -m streamssm.data label --all`, kept in --work so a rerun does not label again)
give the start of the first word and the end of the last. The rule's start and end are compared with
them, on single 10 ms frames (window 1) and with the evaluation's window. The teacher's first word
often begins early (it takes in the silence before it), so its last word's end is the surer
reference; a rule that starts well before the teacher's first word has taken noise for speech.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from machine import provenance, provenance_line, save  # benchmarks/machine.py
from tqdm import tqdm

from streamssm.audio import SAMPLE_RATE, read_audio
from streamssm.data.manifest import read_manifest, write_manifest
from streamssm.eval.asr import SPAN_WINDOW, load_sets, speech_span
from streamssm.eval.sets import NAMED_SETS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WINDOWS = (1, SPAN_WINDOW)
FAR_S = 0.3  # a rule this far outside the teacher's words has taken noise for speech


def teacher_words(name: str, utterances, work: Path, most: int):
    """The set's sample with Whisper tiny.en's word times, labelled once into `work`."""
    sample, labelled = work / f"{name}.jsonl", work / "labels" / f"{name}.jsonl"
    if not labelled.exists():
        write_manifest(sample, utterances[:: max(1, len(utterances) // most)])
        command = [sys.executable, "-m", "streamssm.data", "label", str(sample), "--all", "--min-confidence", "0"]
        subprocess.run([*command, "--threads", "1", "--out", str(labelled)], check=True, cwd=ROOT)
    return [u for u in read_manifest(labelled) if u.words]


def compare(utterances) -> dict:
    """Per window: medians of (rule - teacher) at the start and the end, and how often the rule
    starts more than FAR_S before the first word or ends more than FAR_S after the last."""
    starts, ends = {w: [] for w in WINDOWS}, {w: [] for w in WINDOWS}
    for utterance in tqdm(utterances, desc="speech spans", unit="clip"):
        audio = read_audio(utterance.audio, SAMPLE_RATE)
        for window in WINDOWS:
            span = speech_span(audio, SAMPLE_RATE, window=window)
            if span:
                starts[window].append(span[0] - utterance.words[0][1])
                ends[window].append(span[1] - utterance.words[-1][2])
    return {
        window: {
            "clips": len(starts[window]),
            "start_median_s": float(np.median(starts[window])),
            "end_median_s": float(np.median(ends[window])),
            "start_far_early": float(np.mean(np.array(starts[window]) < -FAR_S)),
            "end_far_late": float(np.mean(np.array(ends[window]) > FAR_S)),
        }
        for window in WINDOWS
    }


def markdown(report: dict) -> str:
    lines = [
        "# Where speech starts and ends: the evaluation's energy rule against a teacher's word times",
        "",
        provenance_line(report),
        "",
        "Rule minus teacher (Whisper tiny.en word times), median over the clips; 'far' = more than "
        f"{FAR_S} s outside the teacher's words. Window: frames of 10 ms whose mean power is a frame's level.",
        "",
        "| set | clips | window | start (s) | starts far early | end (s) | ends far late |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in report["sets"].items():
        for window, r in rows.items():
            lines.append(
                f"| {name} | {r['clips']} | {int(window) * 10} ms | {r['start_median_s']:+.2f} | {r['start_far_early']:.0%} "
                f"| {r['end_median_s']:+.2f} | {r['end_far_late']:.0%} |"
            )
    return "\n".join([*lines, ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(NAMED_SETS), help="named sets or manifests (default: all)")
    parser.add_argument("--most", type=int, default=100, help="about this many utterances per set (default: 100)")
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "speech_span", help="samples and their labels")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for speech_span.md/.json (default: benchmarks/)")
    args = parser.parse_args(argv)
    (args.work / "labels").mkdir(parents=True, exist_ok=True)
    sets = {name: teacher_words(name, us, args.work, args.most) for name, us in load_sets(args.sets).items()}
    report = {**provenance("speech_span.py", argv), "sets": {name: compare(us) for name, us in sets.items()}}
    save(args.out, "speech_span", report, markdown(report))


if __name__ == "__main__":
    main()
