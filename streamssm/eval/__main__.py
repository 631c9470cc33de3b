"""python -m streamssm.eval asr|kws: evaluate a speech recogniser or a keyword spotter."""

import argparse
import sys

from ..decoding import SEARCHES
from ..extras import MissingPiece
from .sets import NAMED_SETS

KWS_HELP = """Recall, false alarms per hour, latency, DET plot and RTF of keyword spotting.

Example:
  python -m streamssm.eval kws --model models/kws --positives wwb precise fsdd \\
      data/kws_tts/heldout/manifest.jsonl --negatives real asterisk --out reports/kws

Positive sets: wwb, precise, fsdd (the eval parts of the real recordings) or manifests of keyword
clips. Negative sets, each streamed as one long stream: "real" (held-out real speech: precise's
non-wake-words and the reader), "asterisk" (Debian's asterisk-core-sounds-en-wav prompts), another
real set of `eval asr` (speechocean762, commonvoice-extra, ...) or the non-keyword clips of a
manifest. A detection of a keyword that an utterance really says (its text has the keyword's words)
is not a false alarm; every other detection is.
--keywords reports only these; with an asr model they are keywords from text (its CTC keyword
search), e.g. the wwb wake words evaluated as if no model had been trained on them:
  python -m streamssm.eval kws --model asr --keywords alexa computer jarvis "smart mirror" snowboy \\
      "view glass" --positives wwb --negatives real asterisk --out reports/kws-text
Writes report.json, det.png (miss rate vs false alarms per hour over one threshold for all
keywords), det-<group>.png (the same per keyword group: wake words, commands, digits) and
summary.md (with false alarms per hour per group and negative set) to --out.
--picovoice SET... adds the Picovoice wake-word benchmark's protocol: the positive sets' wake-word
clips between the utterances of these real negative sets, real noise under all at 10 dB SNR; per
wake word, the miss rate at 1 false alarm per 10 h and at 0.5 per hour (picovoice.png). The view a
wake-word user trusts, on 3 h of real speech of speakers kept out of training:
  python -m streamssm.eval kws --model data/models/kws_v2 --positives wwb precise fsdd \\
      --negatives speechocean762-test commonvoice-extra vctk-p239 real \\
      --picovoice speechocean762-test commonvoice-extra vctk-p239 ljs-reread --out reports/kws_v2
"""

ASR_HELP = """WER, CER, real-time factor and streaming latency of a speech recogniser.

Examples:
  python -m streamssm.eval asr --model models/asr                 # all named sets, both modes
  python -m streamssm.eval asr --model models/asr --sets librivox data/asr_tts/heldout/manifest.jsonl \\
      --mode streaming --chunk-ms 320 --limit 50 --out reports/asr-quick

Sets: "ljs-reread" (held-out real read speech from ../shared/data/asr), "asterisk" (Debian's
asterisk-core-sounds-en-wav telephone prompts), "librivox" (the LibriVox utterances of Debian's
pocketsphinx-testdata), or manifests (every utterance needs a text).
Modes: "streaming" feeds each utterance in --chunk-ms chunks and measures the latency of the first
partial result (from the start of speech) and of the final result (from the end of speech);
"offline" feeds it in one chunk; "both" (the default) runs the two and checks that they give the
same transcripts. Texts are compared after Whisper's English normaliser; RTF is on one thread.
Writes report.json (per-utterance references, hypotheses and errors), summary.md and wer.png to
--out. Exit status: 0, 1 if the modes disagree, 2 for bad input.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m streamssm.eval", description=__doc__)
    tasks = parser.add_subparsers(dest="task", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    asr_parser = tasks.add_parser("asr", help="evaluate a speech recogniser", description=ASR_HELP, formatter_class=raw)
    asr_parser.add_argument("--model", default="asr", help="bundled model name or model folder (default: asr)")
    asr_parser.add_argument(
        "--sets",
        nargs="+",
        default=list(NAMED_SETS),
        metavar="SET",
        help=f"named sets or manifest paths (default: {' '.join(NAMED_SETS)})",
    )
    asr_parser.add_argument(
        "--mode",
        choices=("streaming", "offline", "both"),
        default="both",
        help="decoding mode (default: both, with the agreement check)",
    )
    asr_parser.add_argument("--chunk-ms", type=float, default=160, help="streaming chunk size in ms (default: 160)")
    asr_parser.add_argument("--out", default="reports/asr", help="output folder (default: reports/asr)")
    asr_parser.add_argument("--limit", type=int, help="evaluate only the first N utterances of each set")
    asr_parser.add_argument(
        "--search",
        choices=SEARCHES,
        help="search: transducer, ctc, or ctc-lm (CTC with an English lexicon and word language model); "
        "default: the model's own, in its config.json",
    )
    asr_parser.add_argument(
        "--backend", help="torch, onnx or onnx-int8 (default: onnx when its files are there, else torch)"
    )

    kws_parser = tasks.add_parser("kws", help="evaluate a keyword spotter", description=KWS_HELP, formatter_class=raw)
    kws_parser.add_argument(
        "--model", default="kws", help="bundled model name or folder: a keyword spotter, or an asr model (default: kws)"
    )
    kws_parser.add_argument(
        "--keywords", nargs="+", help="report only these (default: all a spotter knows); any text for an asr model"
    )
    kws_parser.add_argument(
        "--positives",
        nargs="+",
        default=["wwb", "precise", "fsdd"],
        help="wwb, precise, fsdd or keyword-clip manifests (default: wwb precise fsdd)",
    )
    kws_parser.add_argument(
        "--negatives",
        nargs="+",
        default=["real"],
        help="real, asterisk or manifests of non-keyword speech (default: real)",
    )
    kws_parser.add_argument("--out", default="reports/kws", help="output folder")
    kws_parser.add_argument("--chunk-ms", type=int, default=160, help="chunk size for the RTF measurement")
    kws_parser.add_argument("--backend", default="torch", help="torch, onnx or onnx-int8 (default: torch)")
    kws_parser.add_argument(
        "--picovoice", nargs="+", metavar="SET", help="background speech (negative sets) for the Picovoice protocol"
    )

    args = parser.parse_args(argv)
    if args.task == "asr" and args.chunk_ms <= 0:
        asr_parser.error("--chunk-ms must be > 0")
    if args.task == "asr" and args.limit is not None and args.limit < 1:
        asr_parser.error("--limit must be >= 1")
    return args


def run_asr(args) -> int:
    from . import asr  # its modules come with the eval extra

    try:
        recognizer = asr.load_recognizer(args.model, args.search, args.backend)
        sets = asr.load_sets(args.sets, args.limit)
    except (FileNotFoundError, ValueError) as error:  # a bad manifest's ManifestError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    modes = asr.MODES if args.mode == "both" else (args.mode,)
    report = asr.evaluate(recognizer, sets, args.out, modes, args.chunk_ms, model_name=args.model)
    print(asr.summary_table(report))
    return 1 if report.get("modes_agree") is False else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_asr(args) if args.task == "asr" else run_kws(args)
    except MissingPiece as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run_kws(args) -> int:
    from . import kws  # its modules come with the eval extra

    try:
        report = kws.evaluate(
            args.model,
            args.positives,
            args.negatives,
            args.out,
            args.chunk_ms,
            args.backend,
            args.keywords,
            args.picovoice,
        )
    except (FileNotFoundError, ValueError) as error:  # an unknown backend, or one whose files are missing
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(kws.summary_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
