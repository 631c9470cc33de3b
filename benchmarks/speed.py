"""Inference speed of the shipped models on one thread, every backend, beside the peers in one run.

    python -m streamssm.export models/asr --int8   # the int8 files of the asr model (not shipped)
    python benchmarks/speed.py                     # writes speed.md / speed.json
    python benchmarks/speed.py --quick             # a short smoke run of the same code, speed_quick.*

Audio is real read speech (bench_core.reader_clips, looped), 16 kHz, fed in 160 ms chunks through
StreamingRecognizer (front end, model, decoding: everything a user pays for). Backends: torch, onnx
and onnx-int8 (its accuracy change: benchmarks/int8.md). Rows:
  one stream   RTF (wall / audio) and per-chunk latency p50 / p99 per model and backend; for the
               kws model also the cost per keyword (RTF / its 30 keywords)
  batched      B streams fed and stepped with decode_streams, RTF per stream, B = 1, 16, 64, 256
  step/chunk   T encoder frames through the backend as T one-frame calls vs one T-frame call
               (why chunks are never cut into frames)
  breakdown    where a batched step's wall time goes on the onnx backend (1 and 64 streams):
               front end, log-mel, ONNX Runtime, stacking and splitting states, decoding
  limit        the asr encoder's multiply-adds per second of audio / this CPU's single-thread
               float32 matrix-multiply rate: the wall time the arithmetic alone would take
  peers        microWakeWord and openWakeWord ("alexa", one keyword each), pocketsphinx
               (streaming) and Whisper tiny.en (offline, int8) on the same audio
Every process runs one thread (OMP/MKL variables set before numpy, torch and onnxruntime load).
The run refuses to start on a busy machine (--busy-ok overrides): other work halves these numbers.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import sys
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import torch
from bench_core import SR, speech  # benchmarks/bench_core.py
from machine import busy_fraction, describe  # benchmarks/machine.py

from streamssm import recognizer
from streamssm.decoding import SEARCHES
from streamssm.features import SUBSAMPLING
from streamssm.models import resolve_model_dir
from streamssm.nn.state import BatchedState
from streamssm.recognizer import StreamingRecognizer
from streamssm.runtime import BACKENDS, onnx_backend

HERE = Path(__file__).resolve().parent
CHUNK = SR * 160 // 1000
BATCHES = (1, 16, 64, 256)
BREAKDOWN_STREAMS = (1, 64)
MOST_BUSY = 0.25  # share of the CPUs other work may take when a run starts
TARGETS = {("kws", 1): 0.003, ("asr", 1): 0.02, ("kws", 64): 0.0005}  # (model, streams): RTF per stream


def percentiles(latencies_ms) -> dict:
    return {"p50_ms": float(np.percentile(latencies_ms, 50)), "p99_ms": float(np.percentile(latencies_ms, 99))}


def one_stream(rec, audio) -> dict:
    stream, latencies = rec.create_stream(), []
    started = time.perf_counter()
    for start in range(0, len(audio), CHUNK):
        tick = time.perf_counter()
        stream.accept_waveform(audio[start : start + CHUNK], SR)
        latencies.append((time.perf_counter() - tick) * 1000)
    return {"rtf": (time.perf_counter() - started) / (len(audio) / SR), **percentiles(latencies)}


def batched(rec, audio, n_streams) -> dict:
    """n streams, each starting at its own offset into `audio`, stepped together per 160 ms."""
    streams = [rec.create_stream() for _ in range(n_streams)]
    offsets = [(i * 7919) % len(audio) for i in range(n_streams)]
    looped = np.concatenate([audio, audio])
    latencies = []
    started = time.perf_counter()
    for start in range(0, len(audio), CHUNK):
        tick = time.perf_counter()
        for stream, offset in zip(streams, offsets):
            stream.feed(looped[offset + start : offset + start + CHUNK], SR)
        rec.decode_streams(streams)
        latencies.append((time.perf_counter() - tick) * 1000)
    wall = time.perf_counter() - started
    return {"streams": n_streams, "rtf_per_stream": wall / (len(audio) / SR) / n_streams, **percentiles(latencies)}


class StageClock:
    """Exclusive wall time per stage: `timing(owner, attr, stage)` wraps a function or method for
    as long as the context lasts; time inside a nested wrapped call counts for the inner stage."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._children: list[float] = []  # time spent in wrapped callees, per open call

    @contextmanager
    def timing(self, owner, attr: str, stage: str):
        raw = vars(owner)[attr]
        function = raw.__func__ if isinstance(raw, staticmethod) else raw

        def timed(*args, **kwargs):
            started = time.perf_counter()
            self._children.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed, inner = time.perf_counter() - started, self._children.pop()
                self.seconds[stage] += elapsed - inner
                if self._children:
                    self._children[-1] += elapsed

        setattr(owner, attr, staticmethod(timed) if isinstance(raw, staticmethod) else timed)
        try:
            yield
        finally:
            setattr(owner, attr, raw)


def step_breakdown(rec, audio, n_streams) -> dict:
    """Where the wall time of `batched` goes on the onnx backend: share per stage."""
    clock = StageClock()
    stages = [
        (recognizer.Stream, "feed", "front end"),
        (onnx_backend, "frames_log_mel", "log-mel"),
        (onnx_backend.Sessions, "run", "ONNX Runtime"),
        (BatchedState, "stack", "states"),
        (BatchedState, "unbind", "states"),
        (type(rec.decoding), "decode", "decoding"),
    ]
    with ExitStack() as stack:
        for owner, attr, stage in stages:
            stack.enter_context(clock.timing(owner, attr, stage))
        started = time.perf_counter()
        batched(rec, audio, n_streams)
        wall = time.perf_counter() - started
    shares = {stage: clock.seconds[stage] / wall for _, _, stage in stages}
    steps = -(-len(audio) // CHUNK)
    return {
        "streams": n_streams,
        "step_ms": wall / steps * 1000,
        "shares": {**shares, "other": 1 - sum(shares.values())},
    }


def best_ms(call, repeats=7, number=20) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            call()
        times.append((time.perf_counter() - started) / number * 1000)
    return min(times)


@torch.no_grad()
def step_vs_chunk(rec, frames_per_call=(1, 2, 3, 4, 8)) -> list[dict]:
    """Cost of T encoder frames through the backend as T one-frame calls and as one T-frame call."""
    stream = rec.create_stream()
    config = rec.model.config.features
    width = rec.backend.analysis(np.zeros(config.win_length, np.float32), config).shape[-1]
    rows = []
    for frames in frames_per_call:
        x = torch.randn(1, SUBSAMPLING * frames, width) * 0.1
        one = torch.tensor([1])
        piece = x[:, :SUBSAMPLING]

        def steps():
            state = stream.state
            for _ in range(frames):
                _, state = rec.backend(piece, state, one)

        rows.append(
            {
                "frames": frames,
                "steps_ms": best_ms(steps),
                "chunk_ms": best_ms(lambda: rec.backend(x, stream.state, torch.tensor([frames]))),
            }
        )
    return rows


def matmul_gflops() -> float:
    """Single-thread float32 matrix-multiply rate (512 x 512 x 512), GFLOP/s."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    return 2 * 512**3 / (best_ms(lambda: a @ b) / 1000) / 1e9


@torch.no_grad()
def multiply_adds_per_second(model) -> float:
    """Multiply-adds of the encoder and heads for one second of audio (matmuls and convolutions,
    as torch's FLOP counter counts them), through one 160 ms chunk at a time."""
    from torch.utils.flop_counter import FlopCounterMode

    features = torch.randn(1, SUBSAMPLING * 4, model.config.encoder.n_mels)
    with FlopCounterMode(display=False) as counter:
        encoded, _ = model.encoder(features, model.initial_state(1))
        for head in ("head", "ctc_head"):
            if hasattr(model, head):
                getattr(model, head)(encoded)
    return counter.get_total_flops() / 2 / 0.16


def onnx_profile(rec, seconds=5.0) -> list[tuple[str, float]]:
    """Share of the ONNX chunk function's node time per operator type (160 ms chunks)."""
    import onnxruntime as ort

    from streamssm.runtime.graphs import CHUNK

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.enable_profiling = 1, 1, True
    options.profile_file_prefix = str(HERE / "speed_profile")
    session = ort.InferenceSession(str(rec.backend.folder / CHUNK), options, providers=["CPUExecutionProvider"])
    feeds = {"features": np.random.default_rng(0).standard_normal((1, 16, rec.model.config.encoder.n_mels), np.float32)}
    feeds.update((f"state.{i}", t.numpy()) for i, t in enumerate(rec.backend.initial_state().tensors()))
    for _ in range(int(seconds / 0.16)):
        session.run(None, feeds)
    trace = Path(session.end_profiling())
    per_op: dict[str, float] = {}
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] = per_op.get(event["args"]["op_name"], 0) + event["dur"]
    trace.unlink()
    total = sum(per_op.values())
    return sorted(((op, t / total) for op, t in per_op.items()), key=lambda x: -x[1])[:8]


def peers(audio, quick) -> dict:
    """RTF of each installed peer on the same audio; why the others did not run."""
    import asr_peers
    import kws_peers

    makers = {
        "microwakeword (alexa)": lambda: kws_peers.MicroWakeWord(["alexa"]),
        "openwakeword (alexa)": lambda: kws_peers.OpenWakeWord(["alexa"], kws_peers.OWW_DIR),
        "pocketsphinx": lambda: asr_peers.PocketSphinx(160, "set"),
        "whisper-tiny.en": asr_peers.WhisperTiny,
    }
    results = {}
    clip = audio[: (10 if quick else 60) * SR]
    for name, make in makers.items():
        try:
            engine = make()
        except SystemExit as error:  # the peer modules exit with the install command
            results[name] = {"skipped": str(error)}
            continue
        started = time.perf_counter()
        if hasattr(engine, "fire_times"):
            engine.fire_times(clip)
        else:  # a recogniser: 10 s utterances, as a user would hand them over
            for start in range(0, len(clip), 10 * SR):
                engine.transcribe(clip[start : start + 10 * SR])
        results[name] = {"rtf": (time.perf_counter() - started) / (len(clip) / SR)}
        print(name, results[name], flush=True)
    return results


def run(args) -> dict:
    busy = busy_fraction()
    if busy is not None and busy > MOST_BUSY and not args.busy_ok:
        sys.exit(f"the CPUs are {busy:.0%} busy with other work: stop it first, or pass --busy-ok")
    torch.set_num_threads(1)
    seconds = 10.0 if args.quick else 120.0
    audio = speech(seconds)
    report = {
        "date": date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": describe(),
        "torch": torch.__version__,
        "load_average_start": os.getloadavg(),
        "busy_at_start": busy,
        "models": {},
    }
    for name in args.models:
        folder = resolve_model_dir(name)
        entry = report["models"][name] = {"folder": str(folder)}
        for backend in BACKENDS:
            rec = StreamingRecognizer.from_pretrained(folder, backend=backend)
            one_stream(rec, audio[: 5 * SR])  # warm-up
            row = entry[backend] = {"one_stream": one_stream(rec, audio)}
            if rec.model.kind == "kws":
                row["one_stream"]["rtf_per_keyword"] = row["one_stream"]["rtf"] / len(rec.keywords)
            short = audio[: int((4 if args.quick else 16) * SR)]
            row["batched"] = [batched(rec, short, n) for n in (BATCHES[:2] if args.quick else BATCHES)]
            row["step_vs_chunk"] = step_vs_chunk(rec)
            if backend == "onnx":
                row["profile"] = onnx_profile(rec, 2.0 if args.quick else 10.0)
                row["breakdown"] = [step_breakdown(rec, short, n) for n in BREAKDOWN_STREAMS]
            print(name, backend, json.dumps(row["one_stream"]), flush=True)
        if rec.model.kind == "asr":  # each search on the default backend, one stream
            entry["searches"] = {}
            for search in SEARCHES:
                rec = StreamingRecognizer.from_pretrained(folder, backend="onnx", search=search)
                one_stream(rec, audio[: 5 * SR])  # warm-up (and the word search's lexicon loaded)
                entry["searches"][search] = one_stream(rec, audio)
                print(name, search, json.dumps(entry["searches"][search]), flush=True)
        model = StreamingRecognizer.from_pretrained(folder, backend="torch").model
        entry["parameters"] = sum(p.numel() for p in model.parameters())
        if model.kind == "asr":
            entry["search"] = model.config.search
        entry["multiply_adds_per_audio_s"] = multiply_adds_per_second(model)
    report["matmul_gflops_1_thread"] = matmul_gflops()
    report["peers"] = peers(audio, args.quick)
    report["load_average_end"] = os.getloadavg()
    return report


def unmet_targets(r, gflops: float) -> list[str]:
    """One line per target the onnx backend misses: the measured figure (the tables above), the
    share ONNX Runtime took of a step in the breakdown's run, and what the arithmetic alone costs."""
    lines = []
    for (name, streams), target in TARGETS.items():
        if name not in r["models"]:
            continue
        entry, onnx = r["models"][name], r["models"][name]["onnx"]
        rtf = (
            onnx["one_stream"]["rtf"]
            if streams == 1
            else next(row["rtf_per_stream"] for row in onnx["batched"] if row["streams"] == streams)
        )
        if rtf <= target:
            continue
        runtime = next(row["shares"]["ONNX Runtime"] for row in onnx["breakdown"] if row["streams"] == streams)
        arithmetic = 2 * entry["multiply_adds_per_audio_s"] / (gflops * 1e9)
        lines.append(
            f"- {name}, {streams} stream{'s' * (streams > 1)}: {rtf:.4f} per stream against <= {target} "
            f"(not met). ONNX Runtime takes {runtime:.0%} of a step ({rtf * runtime:.4f} of it), the Python "
            f"around it the rest; the arithmetic alone would take {arithmetic:.5f}."
        )
    return lines


def markdown(r) -> str:
    gflops = r["matmul_gflops_1_thread"]
    busy = "an unknown share" if r["busy_at_start"] is None else f"{r['busy_at_start']:.0%}"
    lines = [
        "# Inference speed",
        "",
        f"Command: `{r['command']}` on {r['date']}; {r['machine']}, torch {r['torch']}, CPUs "
        f"{busy} busy with other work at the start, load average "
        f"{tuple(round(x, 2) for x in r['load_average_end'])} at the end. One thread everywhere; 160 ms "
        "chunks of real read speech through StreamingRecognizer (front end, model and decoding).",
        "",
        "## One stream",
        "",
        "| model | backend | RTF | per keyword | chunk p50 | chunk p99 | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in r["models"].items():
        target = TARGETS.get((name, 1))
        for backend in BACKENDS:
            row = entry[backend]["one_stream"]
            per_keyword = f"{row['rtf_per_keyword']:.5f}" if "rtf_per_keyword" in row else ""
            verdict = "" if target is None else f"{target} ({'met' if row['rtf'] <= target else 'not met'})"
            lines.append(
                f"| {name} | {backend} | {row['rtf']:.4f} | {per_keyword} | {row['p50_ms']:.2f} ms | "
                f"{row['p99_ms']:.2f} ms | {verdict} |"
            )
    for name, entry in r["models"].items():
        if "searches" not in entry:
            continue
        lines += [
            "",
            f"## {name}: each search, one stream, onnx",
            "",
            f"The model's own search ({entry['search']}) is the one in the table above.",
            "",
            "| search | RTF | chunk p50 | chunk p99 |",
            "|---|---|---|---|",
        ]
        for search, row in entry["searches"].items():
            lines.append(f"| {search} | {row['rtf']:.4f} | {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms |")
    lines += [
        "",
        "## Batched streams (decode_streams, 160 ms chunks)",
        "",
        "| model | backend | streams | RTF per stream | batch step p50 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in r["models"].items():
        for backend in BACKENDS:
            for row in entry[backend]["batched"]:
                lines.append(
                    f"| {name} | {backend} | {row['streams']} | {row['rtf_per_stream']:.5f} | "
                    f"{row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms |"
                )
    lines += [
        "",
        f"Target for 64 kws streams: <= {TARGETS['kws', 64]} per stream.",
        "",
        "## Step form or blocked scan, by encoder frames per call",
        "",
        "T frames as T one-frame calls (recurrence form) vs one call of T frames (scan), best of 7, ms. "
        "The backends take the one-frame form only for T = 1.",
        "",
        "| model | backend | T | T x step | one chunk |",
        "|---|---|---|---|---|",
    ]
    for name, entry in r["models"].items():
        for backend in BACKENDS:
            for row in entry[backend]["step_vs_chunk"]:
                lines.append(
                    f"| {name} | {backend} | {row['frames']} | {row['steps_ms']:.3f} | {row['chunk_ms']:.3f} |"
                )
    lines += [
        "",
        "## Distance from the arithmetic",
        "",
        f"Single-thread float32 matrix multiply on this CPU: {gflops:.1f} GFLOP/s (512 x 512 x 512).",
        "",
        "| model | parameters | multiply-adds per s of audio | arithmetic-only RTF | onnx RTF | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in r["models"].items():
        limit = 2 * entry["multiply_adds_per_audio_s"] / (gflops * 1e9)
        rtf = entry["onnx"]["one_stream"]["rtf"]
        lines.append(
            f"| {name} | {entry['parameters']:,} | {entry['multiply_adds_per_audio_s'] / 1e6:.1f} M | "
            f"{limit:.5f} | {rtf:.4f} | {rtf / limit:.1f}x |"
        )
    lines += ["", "Where the ONNX chunk function's node time goes (160 ms chunks, share per operator type):", ""]
    for name, entry in r["models"].items():
        shares = ", ".join(f"{op} {share:.0%}" for op, share in entry["onnx"]["profile"])
        lines.append(f"- {name}: {shares}")
    stages = list(r["models"][next(iter(r["models"]))]["onnx"]["breakdown"][0]["shares"])
    lines += [
        "",
        "## Where a step's time goes (onnx backend)",
        "",
        "Share of the wall time of the batched run above (160 ms per stream per step) spent in each "
        "stage, timed around the functions that do it: front end (Stream.feed: checks, resampling, "
        "framing), log-mel (float32 FFT over the batch), ONNX Runtime (every graph, with the numpy "
        "conversions), states (stacking the streams' states into a batch and splitting them back, one "
        "copy per stream), decoding (keyword detectors or the search, outside its ONNX calls), other "
        "(decode_streams' own Python: padding, lengths, loops).",
        "",
        "| model | streams | step | " + " | ".join(stages) + " |",
        "|---|---|---|" + "---|" * len(stages),
    ]
    for name, entry in r["models"].items():
        for row in entry["onnx"]["breakdown"]:
            shares = " | ".join(f"{row['shares'][stage]:.0%}" for stage in stages)
            lines.append(f"| {name} | {row['streams']} | {row['step_ms']:.2f} ms | {shares} |")
    unmet = unmet_targets(r, gflops)
    if unmet:
        lines += ["", "Targets the onnx backend misses, from the same runs:", "", *unmet]
    lines += ["", "## Peers (same run, same audio, one thread)", "", "| engine | RTF |", "|---|---|"]
    for name, result in r["peers"].items():
        lines.append(
            f"| {name} | {result['rtf']:.4f} |"
            if "rtf" in result
            else f"| {name} | not run: {' '.join(result['skipped'].split())} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short measurements (smoke test), speed_quick.*")
    parser.add_argument("--models", nargs="+", default=["kws", "asr"])
    parser.add_argument("--busy-ok", action="store_true", help="run even when other work keeps the CPUs busy")
    args = parser.parse_args(argv)
    report = run(args)
    suffix = "_quick" if args.quick else ""
    (HERE / f"speed{suffix}.json").write_text(json.dumps(report, indent=1))
    (HERE / f"speed{suffix}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
