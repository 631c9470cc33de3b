"""The speech recogniser on one long live-like stream: memory, state size and real-time factor.

    python benchmarks/asr_stream.py                      # 1 hour through models/asr; writes asr_stream.md/.json/.png
    python benchmarks/asr_stream.py --backend torch      # the same on the PyTorch reference
    python benchmarks/asr_stream.py --minutes 2 --out /tmp/asr_stream   # a short check

The stream is real read speech (../shared/data/asr/ljs-reread, the same 12 clips looped), each
utterance followed by 1.5 s of silence so that the recogniser's endpointing closes it with a `final`
event and starts the next, as a microphone left running would. One StreamingRecognizer stream
takes it in 160 ms chunks on one thread. Recorded per minute of audio: the process RSS, the
stream's state size, the wall time; at the end the events counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from bench_core import plot_memory, reader_clips, rss_mb  # benchmarks/bench_core.py
from machine import describe  # benchmarks/machine.py
from tqdm import tqdm

from streamssm.recognizer import StreamingRecognizer
from streamssm.runtime import BACKENDS

HERE = Path(__file__).resolve().parent
SR = 16000
PAUSE_S = 1.5


def speech_minute() -> np.ndarray:
    """One minute of the looped utterances with a pause after each."""
    pause = np.zeros(int(PAUSE_S * SR), dtype=np.float32)
    audio = np.concatenate([part for clip in reader_clips() for part in (clip, pause)])
    return np.tile(audio, SR * 60 // len(audio) + 1)[: SR * 60]


@torch.no_grad()
def run(model: str, minutes: int, chunk_ms: int, backend: str | None) -> dict:
    recognizer = StreamingRecognizer.from_pretrained(model, backend=backend)
    stream, minute, step = recognizer.create_stream(), speech_minute(), SR * chunk_ms // 1000
    rss, state_bytes, wall, counts = [], set(), 0.0, {"partial": 0, "final": 0}
    for _ in tqdm(range(minutes), desc="minutes streamed", unit="min"):
        started = time.perf_counter()
        for start in range(0, len(minute), step):
            for event in stream.accept_waveform(minute[start : start + step], SR):
                counts[event.kind] += 1
        wall += time.perf_counter() - started
        rss.append(rss_mb())
        state_bytes.add(stream.state_nbytes)
    return {
        "rss_mb_per_minute": rss,
        "state_bytes": sorted(state_bytes),
        "events": counts,
        "rtf": wall / (minutes * 60),
        "minutes": minutes,
        "chunk_ms": chunk_ms,
        "backend": recognizer.backend.name,
    }


def report(r) -> str:
    curve = r["rss_mb_per_minute"]
    settled = curve[min(4, len(curve) - 1)]
    return (
        "\n".join(
            [
                "# The speech recogniser on a long stream",
                "",
                f"Command: `{r['command']}` on {r['date']}; {r['machine']}, torch {r['torch']}, one thread, "
                f"model `{r['model']}` on the {r['backend']} backend, {r['chunk_ms']} ms chunks, load average at the "
                f"start {tuple(round(x, 2) for x in r['load_average_start'])} and at the end "
                f"{tuple(round(x, 2) for x in r['load_average'])}.",
                "",
                f"- {r['minutes']} minutes of real read speech with a {PAUSE_S} s pause after each utterance: "
                f"{r['events']['final']} final and {r['events']['partial']} partial events.",
                f"- Real-time factor (wall time over audio time, whole stack: resampler-free front end, encoder, "
                f"transducer search, endpointing): {r['rtf']:.4f}.",
                f"- Stream state: {', '.join(f'{b:,}' for b in r['state_bytes'])} bytes at every minute "
                f"({'constant' if len(r['state_bytes']) == 1 else 'NOT constant'}).",
                f"- Process RSS: {curve[0]:.1f} MB after the first minute, peak {max(curve):.1f} MB, last "
                f"{curve[-1]:.1f} MB (growth after minute {min(5, len(curve))}: {curve[-1] - settled:+.1f} MB). "
                f"Plot: asr_stream.png.",
            ]
        )
        + "\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="asr", help="bundled model name or ASR model folder (default: asr)")
    parser.add_argument("--minutes", type=int, default=60, help="audio streamed (default: 60)")
    parser.add_argument("--chunk-ms", type=int, default=160, help="chunk size (default: 160)")
    parser.add_argument("--backend", choices=BACKENDS, help="the model's runtime (default: the fastest installed)")
    parser.add_argument(
        "--out", type=Path, default=HERE, help="folder for asr_stream.md/.json/.png (default: benchmarks/)"
    )
    args = parser.parse_args()
    if args.minutes < 1 or args.chunk_ms < 10:
        parser.error("--minutes must be >= 1 and --chunk-ms >= 10")
    torch.set_num_threads(1)
    load_average_start = os.getloadavg()
    result = run(args.model, args.minutes, args.chunk_ms, args.backend)
    result.update(
        command=" ".join(["python benchmarks/asr_stream.py", *sys.argv[1:]]),
        date=str(date.today()),
        machine=describe(),
        torch=torch.__version__,
        model=args.model,
        load_average_start=load_average_start,
        load_average=os.getloadavg(),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr_stream.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "asr_stream.md").write_text(report(result))
    plot_memory(result["rss_mb_per_minute"], args.out / "asr_stream.png")
    print(report(result))


if __name__ == "__main__":
    main()
