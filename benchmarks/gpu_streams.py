"""Batched streams on a GPU: how many streams of each shipped model one device keeps in real time.

    python benchmarks/gpu_streams.py --out DIR                     # on a CUDA machine (benchmarks/gpu.sh)
    python benchmarks/gpu_streams.py --out /tmp/g --device cpu --dtype fp32 --max-streams 8   # dry run

For B = 1, 4, 16, ... streams, one 160 ms chunk (4 encoder frames) of every stream runs through the
encoder and head as one batch: weights in bf16, SSM states in float32 (CausalMamba2 keeps them so).
Two ways: "chunk" (one call on the 4 frames: the blocked scan, or the mamba-ssm kernels where they
import) and "graph-step" (4 replays of a CUDA graph of the one-frame step, captured for that batch
size: no launch overhead per kernel). B doubles until a chunk takes longer than its 160 ms of
audio (no longer real time) or memory runs out. Features are random log-mel frames made on the
device: the table is the model's cost, not the front end's. Writes gpu_streams.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from streamssm.features import SUBSAMPLING
from streamssm.models import load_model

CHUNK_S = 0.16
FRAMES = 4  # encoder frames per 160 ms chunk
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(call, device, repeats=20) -> float:
    """Median seconds of `call()` after two warm-up calls."""
    for _ in range(2):
        call()
    sync(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def chunk_call(model, features, state):
    head = model.head if model.kind == "kws" else model.ctc_head

    def call():
        encoded, _ = model.encoder(features, state)
        return head(encoded)

    return call


def graph_step_call(model, features, state):
    """A CUDA graph of one encoder step (4 feature frames) and the head, replayed FRAMES times."""
    head = model.head if model.kind == "kws" else model.ctc_head
    static_in = features[:, :SUBSAMPLING].clone()
    static_state = state
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm up off the default stream, as capture requires
        for _ in range(2):
            model.encoder.step(static_in, static_state)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        encoded, new_state = model.encoder.step(static_in, static_state)
        head(encoded)
    inputs, outputs = static_state.tensors(), new_state.tensors()

    def call():
        for _ in range(FRAMES):
            graph.replay()
            for target, source in zip(inputs, outputs):
                target.copy_(source)

    return call


@torch.no_grad()
def measure(model, n_streams, mode, device, dtype) -> dict:
    features = torch.randn(n_streams, SUBSAMPLING * FRAMES, model.config.encoder.n_mels, device=device, dtype=dtype)
    state = model.encoder.initial_state(n_streams, device)
    make = graph_step_call if mode == "graph-step" else chunk_call
    seconds = timed(make(model, features, state), device)
    return {
        "streams": n_streams,
        "mode": mode,
        "chunk_ms": seconds * 1000,
        "rtf_per_stream": seconds / CHUNK_S / n_streams,
        "real_time": seconds <= CHUNK_S,
    }


def run(args) -> dict:
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    modes = ["chunk"] + (["graph-step"] if device.type == "cuda" else [])
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "dtype": args.dtype,
        "command": "python " + " ".join(sys.argv),
        "rows": [],
    }
    for name in args.models:
        model = load_model(name, device).to(dtype)
        for mode in modes:
            n_streams = 1
            while n_streams <= args.max_streams:
                try:
                    row = {"model": name, **measure(model, n_streams, mode, device, dtype)}
                except torch.OutOfMemoryError:
                    report["rows"].append({"model": name, "mode": mode, "streams": n_streams, "out_of_memory": True})
                    break
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
                if not row["real_time"]:
                    break
                n_streams *= 4
    return report


def markdown(report) -> str:
    lines = [
        f"# Batched streams on {report['device']}",
        "",
        f"`{report['command']}`; torch {report['torch']}, weights {report['dtype']}, SSM states float32, "
        "one 160 ms chunk (4 encoder frames) per stream per call.",
        "",
        "| model | mode | streams | chunk time | RTF per stream | real time |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        if row.get("out_of_memory"):
            lines.append(f"| {row['model']} | {row['mode']} | {row['streams']} | out of memory | | |")
        else:
            lines.append(
                f"| {row['model']} | {row['mode']} | {row['streams']} | {row['chunk_ms']:.2f} ms | "
                f"{row['rtf_per_stream']:.2e} | {'yes' if row['real_time'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--models", nargs="+", default=["kws", "asr"])
    parser.add_argument("--max-streams", type=int, default=65536)
    args = parser.parse_args(argv)
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_streams.json").write_text(json.dumps(report, indent=1))
    (args.out / "gpu_streams.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
