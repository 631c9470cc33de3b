"""python -m streamssm.distill encode SOURCE... : store a teacher's encoder outputs for training clips.
python -m streamssm.distill alignment MODEL SOURCE... : a transferred student's distance from its teacher.
python -m streamssm.distill encoder-tensors OUT.npz : a Whisper teacher's encoder weights in one file,
    for transfer and alignment where its package cannot be installed (a lent GPU machine).

Each SOURCE is a manifest or the name of a real recording set (its train part only, see
streamssm/data/splits.py). The outputs (fp16, 40 ms frames) go to --cache/TEACHER/ and are what
`distill_weight` in an ASR training config reads (configs/asr_distill.json); clips already stored
are skipped, so the command can be re-run or run in several processes over different sources.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..data.manifest import read_manifest
from ..data.splits import FOLDERS, real_split


def clips_of(source: str, part: str = "train"):
    return real_split(source)[part] if source in FOLDERS else read_manifest(source)


def report_alignment(args):
    """Print the mean relative error of each hidden state on the sources' held-out clips."""
    from ..audio import read_audio
    from ..features import log_mel
    from ..models import load_model
    from .layers import LayerTargets, alignment_errors

    model = load_model(args.model)
    names = ["stem", *(f"block {i + 1}" for i in range(model.config.encoder.n_layers)), "final norm"]
    targets = LayerTargets(args.teacher)
    print(f"relative squared error per frame, student frame t vs {args.teacher} frame t - {args.delay}")
    print("| source | clips | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for source in args.sources:
        clips = clips_of(source, "eval")[: args.limit]
        features = [
            log_mel(read_audio(c.audio, model.config.features.sample_rate), model.config.features) for c in clips
        ]
        errors = alignment_errors(model.encoder, targets, features, args.delay)
        print(f"| {source} | {len(clips)} | " + " | ".join(f"{e:.3f}" for e in errors) + " |")


def write_encoder_tensors(args):
    from .transfer import save_encoder_tensors

    if args.out.suffix != ".npz":
        raise SystemExit(f"error: {args.out} must end in .npz")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tensors = save_encoder_tensors(args.teacher, args.out)
    print(f"{len(tensors)} encoder tensors of {args.teacher}, {args.out.stat().st_size / 2**20:.1f} MiB -> {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.distill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    encode = commands.add_parser("encode", help="store a teacher's encoder outputs per clip")
    encode.add_argument("sources", nargs="+", help="manifests or real set names (their train parts)")
    encode.add_argument("--teacher", default="whisper-tiny.en", help="whisper-tiny.en (default) or whisper-base")
    encode.add_argument("--cache", type=Path, default=Path("data/teacher_cache"), help="cache root")
    encode.add_argument("--threads", type=int, default=1, help="teacher threads (default 1)")
    align = commands.add_parser(
        "alignment", help="how far a transferred student's hidden states are from its teacher's (held-out clips)"
    )
    align.add_argument("model", help="an ASR model folder with a Whisper-shaped encoder (transfer_from)")
    align.add_argument("sources", nargs="+", help="manifests or real set names (their eval parts)")
    align.add_argument("--teacher", default="whisper-tiny.en", help="the teacher it was transferred from")
    align.add_argument("--delay", type=int, default=2, help="student frame t against teacher frame t - delay")
    align.add_argument("--limit", type=int, default=100, help="clips per source (default 100)")
    tensors = commands.add_parser("encoder-tensors", help="write a Whisper teacher's encoder weights to an .npz")
    tensors.add_argument("out", type=Path, help="the .npz to write (`teacher` and `transfer_from` take its path)")
    tensors.add_argument("--teacher", default="whisper-tiny.en", help="whisper-tiny.en (default) or whisper-base")
    args = parser.parse_args(argv)
    if args.command == "alignment":
        return report_alignment(args)
    if args.command == "encoder-tensors":
        return write_encoder_tensors(args)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from ..extras import MissingPiece
    from .cache import TeacherCache

    clips = [clip for source in args.sources for clip in clips_of(source)]
    try:
        computed = TeacherCache(args.cache, args.teacher).build(clips, threads=args.threads)
    except MissingPiece as error:
        raise SystemExit(f"error: {error}") from None
    print(
        f"{len(clips)} clips: {computed} encoded now, {len(clips) - computed} were stored already "
        f"({args.cache / args.teacher})"
    )


if __name__ == "__main__":
    main()
