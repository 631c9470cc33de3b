"""python -m streamssm.mic: detect keywords or transcribe speech live from the microphone (or a file
played in real time).

Examples:
  python -m streamssm.mic --model kws                       # default input device
  python -m streamssm.mic --model asr                       # partial text on one line, final text below
  python -m streamssm.mic --list-devices
  python -m streamssm.mic --device pulse --keywords alexa computer --threshold 0.6
  python -m streamssm.mic --keywords alexa "hey streamssm"   # a keyword from text beside a trained one
  python -m streamssm.mic --input recording.flac --fast --json

Ctrl-C (or SIGTERM) stops listening; the events of the audio heard so far are reported first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from .sources import MicrophoneSource, MicrophoneUnavailable, file_chunks, list_input_devices


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.mic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="kws", help="bundled model name or model folder (default: kws)")
    parser.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    parser.add_argument("--device", help="input device index or name (default: the system default)")
    parser.add_argument("--sample-rate", type=int, help="record at this rate (default: the device's own)")
    parser.add_argument(
        "--keywords",
        nargs="+",
        help="report these keywords (default: all a keyword model knows): its own, or any text, in quotes "
        "for several words, which the bundled asr model spells (with --model asr: keywords instead of text)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="one detection threshold in (0, 1] for all keywords (default: the calibrated ones)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per event per line")
    parser.add_argument("--input", metavar="FILE", help="run on a sound file, paced in real time, instead of the mic")
    parser.add_argument("--fast", action="store_true", help="with --input: as fast as possible, not in real time")
    parser.add_argument("--block-ms", type=float, default=40, help="audio block size in ms (default: 40)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model (default: 1)")
    args = parser.parse_args(argv)
    if args.fast and not args.input:
        parser.error("--fast needs --input FILE")
    if args.device is not None and args.device.isdigit():
        args.device = int(args.device)
    return args


def print_event(event, as_json: bool):
    if as_json:
        print(json.dumps(event.to_dict()), flush=True)
    elif event.kind == "partial":  # overwritten by the next partial or final line
        print(f"\r{event.end:9.2f} s  {event.kind:8s} {event.text}\x1b[K", end="", flush=True)
    elif event.kind == "final":
        print(f"\r{event.end:9.2f} s  {event.kind:8s} {event.text}\x1b[K", flush=True)
    else:
        print(f"{event.end:9.2f} s  {event.kind:8s} {event.text:16s} score {event.score:.2f}", flush=True)


def run(args) -> int:
    from .recognizer import StreamingRecognizer  # loads torch: not needed for --help or --list-devices

    recognizer = StreamingRecognizer.from_pretrained(
        args.model, keywords=args.keywords, thresholds=args.threshold, threads=args.threads
    )
    transcribing = recognizer.task == "asr"
    stream = recognizer.create_stream()
    if args.input:
        source, label = file_chunks(args.input, args.block_ms, realtime=not args.fast), args.input
    else:
        source = MicrophoneSource(args.device, args.sample_rate, args.block_ms)
        label = f"{source.device_name} at {source.sample_rate} Hz"
    if not args.json:
        task = "transcribing" if transcribing else f"for: {', '.join(recognizer.keywords)}"
        print(f"listening to {label} {task} (Ctrl-C to stop)", file=sys.stderr)
    detections = 0
    try:
        for event in stream.run(source):
            print_event(event, args.json)
            detections += event.kind != "partial"
    except KeyboardInterrupt:
        pass
    finally:
        if isinstance(source, MicrophoneSource):
            source.close()
    for event in stream.finish():  # after an interrupt; nothing if the source had ended
        print_event(event, args.json)
        detections += event.kind != "partial"
    overflows = getattr(source, "overflows", 0)
    if not args.json:
        print(
            f"{detections} {'final result' if transcribing else 'detection'}(s); {overflows} input overflow(s)",
            file=sys.stderr,
        )
    return 0


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # stopped by a service manager or `kill`: as Ctrl-C
    try:
        if args.list_devices:
            print(list_input_devices())
            return 0
        return run(args)
    except BrokenPipeError:  # the reader went away (`... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        print("error: the output was closed before the end", file=sys.stderr)
        return 1
    except (MicrophoneUnavailable, OSError, ValueError) as error:  # FileNotFoundError is an OSError
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
