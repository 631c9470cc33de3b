"""python -m streamssm.transcribe: transcribe sound files with an ASR model.

Examples:
  python -m streamssm.transcribe speech.flac other.wav          # one line of text per file
  python -m streamssm.transcribe speech.flac --json             # utterances with word times
  python -m streamssm.transcribe speech.flac --mode offline --beam 8

--mode streaming (the default) runs the file through a stream in --chunk-ms chunks, exactly as
live audio: one final result per endpoint. --mode offline encodes the whole file at once and
searches it as one utterance (beam search for the transducer, greedy for CTC, the word search
for ctc-lm).
"""

from __future__ import annotations

import argparse
import json
import sys

from .decoding import SEARCHES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.transcribe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="sound files (any format soundfile reads)")
    parser.add_argument("--model", default="asr", help="bundled model name or model folder (default: asr)")
    parser.add_argument("--mode", choices=("streaming", "offline"), default="streaming")
    parser.add_argument(
        "--search",
        choices=SEARCHES,
        help="transducer, ctc, or ctc-lm (CTC with an English lexicon and word language model); default: the model's",
    )
    parser.add_argument("--chunk-ms", type=float, default=160, help="streaming chunk size in ms (default: 160)")
    parser.add_argument("--beam", type=int, default=4, help="offline transducer beam size (default: 4)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, with utterances and word times")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model (default: 1)")
    args = parser.parse_args(argv)
    if args.chunk_ms <= 0:
        parser.error("--chunk-ms must be > 0")
    if args.beam < 1:
        parser.error("--beam must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch  # here, not above: --help needs no model

    from .audio import read_audio
    from .decoding.speech import decode_offline
    from .recognizer import StreamingRecognizer
    from .sources import array_chunks

    torch.set_num_threads(args.threads)  # the offline mode runs the model directly
    try:
        recognizer = StreamingRecognizer.from_pretrained(args.model, search=args.search, threads=args.threads)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = recognizer.model
    if model.kind != "asr":
        print(f"error: {args.model!r} is a {model.kind} model; transcription needs an asr model", file=sys.stderr)
        return 2
    failed = 0
    for path in args.files:
        try:
            audio = read_audio(path, model.config.features.sample_rate)
        except OSError as error:  # FileNotFoundError included
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        rate = model.config.features.sample_rate
        if args.mode == "streaming":  # in chunks, as live audio: one final result per endpoint
            chunks = array_chunks(audio, rate, max(1, round(rate * args.chunk_ms / 1000)))
            utterances = [e for e in recognizer.create_stream().run(chunks) if e.kind == "final"]
        else:
            utterances = decode_offline(model, audio, rate, recognizer.decoding.search_name, args.beam)
        text = " ".join(u.text for u in utterances)
        if args.json:
            result = {"file": str(path), "text": text, "utterances": [u.to_dict() for u in utterances]}
            print(json.dumps(result), flush=True)
        else:
            print(f"{path}: {text}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
