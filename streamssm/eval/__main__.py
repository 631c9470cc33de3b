"""python -m streamssm.eval kws: recall, false alarms per hour, latency, DET plot and RTF of a KWS model.

Example:
  python -m streamssm.eval kws --model models/kws --positives wwb precise fsdd \\
      data/kws_tts/heldout/manifest.jsonl --negatives real asterisk --out reports/kws

Positive sets: wwb, precise, fsdd (the eval parts of the real recordings) or manifests of keyword
clips. Negative sets, each streamed as one long stream: "real" (held-out real speech: precise's
non-wake-words and the reader), "asterisk" (Debian's asterisk-core-sounds-en-wav prompts) or the
non-keyword clips of a manifest. A detection of a keyword that an utterance really says (its text
has the keyword's words) is not a false alarm; every other detection is.
Writes report.json, det.png (miss rate vs false alarms per hour over one threshold for all
keywords) and summary.md to --out.
"""

import argparse

from . import kws


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m streamssm.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = parser.add_subparsers(dest="task", required=True)
    kws_parser = tasks.add_parser("kws", help="evaluate a keyword spotter", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    kws_parser.add_argument("--model", default="kws", help="bundled model name or folder (default: kws)")
    kws_parser.add_argument("--positives", nargs="+", default=["wwb", "precise", "fsdd"],
                            help="wwb, precise, fsdd or keyword-clip manifests (default: wwb precise fsdd)")
    kws_parser.add_argument("--negatives", nargs="+", default=["real"],
                            help="real, asterisk or manifests of non-keyword speech (default: real)")
    kws_parser.add_argument("--out", default="reports/kws", help="output folder")
    kws_parser.add_argument("--chunk-ms", type=int, default=160, help="chunk size for the RTF measurement")
    args = parser.parse_args(argv)
    report = kws.evaluate(args.model, args.positives, args.negatives, args.out, args.chunk_ms)
    print(kws.summary_table(report))


if __name__ == "__main__":
    main()
