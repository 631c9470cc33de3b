"""What the int8 backend changes: accuracy of both shipped models on the real eval sets, onnx
against onnx-int8, through the evaluations users run.

    python benchmarks/int8.py                 # writes int8.md / int8.json and int8/<model>-<backend>/
    python benchmarks/int8.py --limit 50      # a short development run of the same code

The kws model (its int8 files ship) goes through `python -m streamssm.eval kws` on its default
positive and negative sets; the asr model (its ONNX files are not shipped: exported here with
`--int8` into a temporary copy of its folder) through `python -m streamssm.eval asr` in streaming
mode on ASR_SETS. Speed is not measured here (benchmarks/speed.py has an onnx-int8 row).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from machine import commit, describe  # benchmarks/machine.py

from streamssm.eval import asr as eval_asr, kws as eval_kws
from streamssm.export import export
from streamssm.models import resolve_model_dir

HERE = Path(__file__).resolve().parent
BACKENDS = ("onnx", "onnx-int8")
ASR_SETS = ["ljs-reread", "speechocean762", "asterisk"]
KWS_POSITIVES, KWS_NEGATIVES = ["wwb", "precise", "fsdd"], ["real", "asterisk"]


def kws_rows(out: Path) -> list[dict]:
    rows = []
    for backend in BACKENDS:
        report = eval_kws.evaluate("kws", KWS_POSITIVES, KWS_NEGATIVES, out / f"kws-{backend}", backend=backend)
        shipped = report["shipped_thresholds"]
        recall = {name: row["recall"] for name, row in shipped["positives"].items()}
        rows.append({"backend": backend, "recall": recall, "false_alarms_per_hour": shipped["false_alarms_per_hour"]})
    return rows


def asr_rows(out: Path, limit: int | None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(resolve_model_dir("asr"), Path(tmp) / "asr"))
        export(folder, int8=True)
        sets = eval_asr.load_sets(ASR_SETS, limit)
        for backend in BACKENDS:
            recognizer = eval_asr.load_recognizer(folder, backend=backend)
            report = eval_asr.evaluate(recognizer, sets, out / f"asr-{backend}", ["streaming"], model_name="models/asr")
            wer = {name: result["streaming"]["wer"] for name, result in report["sets"].items()}
            rows.append({"backend": backend, "wer": wer})
    return rows


def markdown(result: dict) -> str:
    kws, asr = result["kws"], result["asr"]
    lines = [
        "# The int8 backend: what it changes on the real eval sets",
        "",
        f"`python benchmarks/int8.py`, {result['date']}, commit {result['commit']}, {result['machine']}.",
        "Backends: `onnx` (the exported float graphs) and `onnx-int8` (`python -m streamssm.export MODEL --int8`:",
        "linear layers with 8-bit weights, multiplying in int8). Shipped thresholds, 160 ms chunks.",
        "",
        "## kws (`python -m streamssm.eval kws --backend ...`)",
        "",
        "| backend | " + " | ".join(f"recall {name}" for name in kws[0]["recall"]) + " | false alarms per hour |",
        "|---|" + "---|" * (len(kws[0]["recall"]) + 1),
    ]
    for row in kws:
        recalls = " | ".join(f"{r:.1%}" for r in row["recall"].values())
        lines.append(f"| {row['backend']} | {recalls} | {row['false_alarms_per_hour']:.2f} |")
    lines += [
        "",
        f"False alarms on {', '.join(KWS_NEGATIVES)}; full reports in `int8/kws-<backend>/`.",
        "",
        "## asr (`python -m streamssm.eval asr --mode streaming --backend ...`)",
        "",
        "| backend | " + " | ".join(f"WER {name}" for name in asr[0]["wer"]) + " |",
        "|---|" + "---|" * len(asr[0]["wer"]),
    ]
    for row in asr:
        lines.append(f"| {row['backend']} | " + " | ".join(f"{w:.1%}" for w in row["wer"].values()) + " |")
    lines += ["", "Full reports in `int8/asr-<backend>/`."]
    if result["limit"]:
        lines += ["", f"Development run: the first {result['limit']} utterances of each asr set."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="only the first N utterances of each asr set")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for int8.md, int8.json and int8/")
    args = parser.parse_args()
    details = args.out / "int8"
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": describe(),
        "limit": args.limit,
        "kws": kws_rows(details),
        "asr": asr_rows(details, args.limit),
    }
    (args.out / "int8.json").write_text(json.dumps(result, indent=1))
    (args.out / "int8.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
