"""What weight transfer and distillation buy, on the same budget: the ASR issue's ablation.

    python benchmarks/asr_ablation.py                    # every arm, 300 steps each
    python benchmarks/asr_ablation.py --arms scratch transfer --steps 2 --limit 2 --out /tmp/ablation   # a plumbing check

Every arm is one run of configs/asr_transfer_text.json (CTC + transducer on the transcribed real
speech and pseudo-labels: same data, same order, same seed, same steps, the schedule over those
steps, no time limit) that changes only how the encoder starts and whether it is aligned with the
teacher (Whisper tiny.en) while it learns the text:

  scratch            the student's shape and front end, fresh weights; no alignment loss
  scratch+distill    the same, with the config's alignment loss (every hidden state against the
                     teacher's): distillation as an auxiliary loss from the start
  transfer           the encoder copied from the teacher (MOHAWK's weight transfer), alignment loss;
                     the encoder held still for the first --frozen steps while the heads settle
  transfer+aligned   the committed aligned student (transfer, then two hours of hidden-state alignment
                     without transcripts: distilled pre-training), then as transfer

The decoder, joiner and CTC head of every arm come from the aligned student (--student), so the
arms differ in the encoder alone; the alignment's own compute is in the student's compute.json.
Each model is evaluated streaming (160 ms chunks, greedy transducer) on --sets. A finished arm (its
evaluation, OUT/ARM/eval/report.json, with its run's compute.json and log.jsonl) is not run again,
and an interrupted one resumes from its checkpoint, so the command can be repeated until it
completes; an arm's results, without its model, are enough to restore it in a new OUT. Writes
asr_ablation.md and .json into --report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from machine import commit, describe  # benchmarks/machine.py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASE_CONFIG = ROOT / "configs" / "asr_transfer_text.json"
TEACHER = "whisper-tiny.en"
ARMS = {
    "scratch": dict(transfer_from=TEACHER, transfer_weights=False, layer_distill_weight=0.0, frozen_encoder_steps=0),
    "scratch+distill": dict(transfer_from=TEACHER, transfer_weights=False, frozen_encoder_steps=0),
    "transfer": dict(transfer_from=TEACHER),
    "transfer+aligned": {},
}
SETS = ("ljs-reread", "speechocean762", "commonvoice-extra", "vctk-p239")


def arm_settings(arm: str, args, out: Path) -> dict:
    return {
        "frozen_encoder_steps": args.frozen,
        **ARMS[arm],
        "init_from": str(args.student),
        "out_dir": str(out / "run"),
        "model_dir": str(out / "model"),
        "steps": args.steps,
        "time_limit_s": None,
    }


def run_arm(arm: str, args) -> dict:
    out = args.out / arm
    model, evaluation = out / "model", out / "eval"
    if not (evaluation / "report.json").exists() and not (model / "config.json").exists():
        settings = [f"{key}={json.dumps(value)}" for key, value in arm_settings(arm, args, out).items()]
        command = [sys.executable, "-m", "streamssm.train", "asr", "--config", str(BASE_CONFIG)]
        subprocess.run([*command, *(a for s in settings for a in ("--set", s))], check=True, cwd=ROOT)
    if not (evaluation / "report.json").exists():
        command = [sys.executable, "-m", "streamssm.eval", "asr", "--model", str(model), "--mode", "streaming"]
        command += ["--sets", *args.sets, "--out", str(evaluation)]
        subprocess.run(command + (["--limit", str(args.limit)] if args.limit else []), check=True, cwd=ROOT)
    report = json.loads((evaluation / "report.json").read_text())
    compute = json.loads((out / "run" / "compute.json").read_text())
    return {
        **from_log(out / "run" / "log.jsonl", compute["steps"]),
        "wer": {name: result["streaming"]["wer"] for name, result in report["sets"].items()},
        "utterances": {name: result["utterances"] for name, result in report["sets"].items()},
        "steps": compute["steps"],
        "audio_hours_seen": compute["audio_hours_seen"],
        "wall_seconds": compute["wall_seconds"],
    }


def from_log(log: Path, steps: int, last: int = 100) -> dict:
    """The median step time of the run (robust to pauses, unlike its wall time) and the mean
    transducer and CTC loss of its logged steps among the last `last`: every arm sees the same
    batches, so these compare the arms even where none transcribes anything yet."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    final = [row for row in rows if row["step"] >= steps - last]
    return {
        "median_step_seconds": statistics.median(row["step_seconds"] for row in rows),
        "final_losses": {loss: statistics.mean(row[loss] for row in final) for loss in ("transducer", "ctc")},
    }


def markdown(result: dict) -> str:
    arms, sets = result["arms"], result["sets"]
    lines = [
        "# ASR ablation: from scratch, distillation, weight transfer, distilled pre-training",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}, commit {result['commit']}; machine: {result['machine']}",
        "",
        "Same recipe, data, order, seed and steps for every arm (benchmarks/asr_ablation.py says what each",
        "arm changes); streaming WER, 160 ms chunks, greedy transducer, after Whisper's English normaliser.",
        "",
        "| arm | steps | audio seen (h) | median step (s) | transducer loss | CTC loss | " + " | ".join(sets) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(sets),
    ]
    for arm, r in arms.items():
        wers = " | ".join(f"{100 * r['wer'][name]:.1f} %" for name in sets)
        losses = f"{r['final_losses']['transducer']:.1f} | {r['final_losses']['ctc']:.1f}"
        lines.append(
            f"| {arm} | {r['steps']} | {r['audio_hours_seen']:.2f} | {r['median_step_seconds']:.2f} | {losses} | {wers} |"
        )
    first = next(iter(arms.values()))
    counted = ", ".join(f"{name} {first['utterances'][name]}" for name in sets)
    note = (
        "Losses: the mean of the logged training steps among the last 100 (the same batches in every arm). "
        f"Utterances per set: {counted}."
    )
    return "\n".join([*lines, "", note, ""])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS), help="arms to run (default: all)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of every arm (default: 300)")
    parser.add_argument(
        "--frozen", type=int, default=50, help="steps the transferred encoders are held still (default: 50)"
    )
    parser.add_argument(
        "--student",
        type=Path,
        default=ROOT / "models" / "asr" / "training" / "transfer" / "student",
        help="the aligned student: the transfer+aligned arm's encoder and every arm's heads",
    )
    parser.add_argument("--sets", nargs="+", default=list(SETS), help=f"evaluation sets (default: {' '.join(SETS)})")
    parser.add_argument("--limit", type=int, help="evaluate only the first N utterances of each set")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "ablation", help="runs, models, evaluations")
    parser.add_argument(
        "--report", type=Path, default=HERE, help="folder for asr_ablation.md/.json (default: benchmarks/)"
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or not 0 <= args.frozen < args.steps:
        parser.error("--steps must be >= 1 and --frozen in [0, steps)")
    if not (args.student / "config.json").exists():
        parser.error(f"{args.student} holds no model (config.json): pass --student, the aligned student's folder")
    args.out = args.out.resolve()
    arms = {arm: run_arm(arm, args) for arm in args.arms}
    result = {
        "command": " ".join(["python benchmarks/asr_ablation.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now().isoformat(timespec="minutes"),
        "commit": commit(),
        "machine": describe(),
        "load_average": os.getloadavg(),
        "sets": list(args.sets),
        "arms": arms,
    }
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "asr_ablation.json").write_text(json.dumps(result, indent=1) + "\n")
    page = markdown(result)
    (args.report / "asr_ablation.md").write_text(page)
    print(page)


if __name__ == "__main__":
    main()
