"""Streaming core benchmark: real-time factor, per-chunk latency, state size and memory over an hour.

    python benchmarks/bench_core.py                 # the full run, writes core.md / core.json / core_memory.png
    python benchmarks/bench_core.py --quick         # a short smoke run of the same code paths
    python benchmarks/bench_core.py --device cuda --dtype bf16 --backend kernels   # on a GPU machine

Audio is real speech (../shared/data/asr/ljs-reread, looped) streamed through the whole stack:
resampler-free 16 kHz front end (log-mel) + causal Mamba encoder. Batched rows step B streams as
one batch (stacked states); "separate" runs the same B streams one call each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from machine import describe  # benchmarks/machine.py

from streamssm.audio import read_audio
from streamssm.features import FrontEnd
from streamssm.nn.encoder import EncoderConfig, EncoderState, MambaEncoder

HERE = Path(__file__).resolve().parent
CONFIG = EncoderConfig(d_model=256, n_layers=10, d_state=64, headdim=64, expand=2, subsampling_channels=256)
SR = 16000


def reader_clips() -> list[np.ndarray]:
    """The 12 real read-speech clips the benchmarks loop (../shared/data/asr/ljs-reread)."""
    folder = Path(os.environ.get("STREAMSSM_SHARED_DATA", HERE.parents[1] / "shared" / "data")) / "asr" / "ljs-reread"
    return [read_audio(p) for p in sorted(folder.glob("*.flac"))[:12]]


def speech(seconds: float) -> np.ndarray:
    audio = np.concatenate(reader_clips())
    return np.tile(audio, int(seconds * SR) // len(audio) + 1)[: int(seconds * SR)]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@torch.no_grad()
def stream_rtf(encoder, audio, chunk_ms, streams, batched, device, dtype):
    """Wall time / audio time per stream, and per-chunk latencies (ms) of the whole batch step."""
    step = SR * chunk_ms // 1000
    frontends = [FrontEnd() for _ in range(streams)]
    states = [encoder.initial_state(1) for _ in range(streams)]
    latencies = []
    started = time.perf_counter()
    for start in range(0, len(audio), step):
        tick = time.perf_counter()
        feats = [fe.accept(audio[start : start + step], SR) for fe in frontends]
        if feats[0].shape[0]:
            if batched:
                batch = torch.stack(feats).to(device, dtype)
                _, state = encoder(batch, EncoderState.stack(states))
                states = state.unbind()
            else:
                states = [encoder(f[None].to(device, dtype), s)[1] for f, s in zip(feats, states)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        latencies.append((time.perf_counter() - tick) * 1000)
    total = time.perf_counter() - started
    return total / (len(audio) / SR) / streams, float(np.median(latencies)), float(np.percentile(latencies, 99))


@torch.no_grad()
def memory_over_stream(encoder, hours, device, dtype):
    """RSS (MB) after each simulated minute of one stream at 160 ms chunks."""
    minute = speech(60.0)
    frontend, state, curve = FrontEnd(), encoder.initial_state(1), []
    for _ in range(int(hours * 60)):
        for start in range(0, len(minute), SR * 160 // 1000):
            feats = frontend.accept(minute[start : start + SR * 160 // 1000], SR)
            if feats.shape[0]:
                _, state = encoder(feats[None].to(device, dtype), state)
        curve.append(rss_mb())
    return curve, state.nbytes


def run_setting(args, threads):
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    encoder = MambaEncoder(CONFIG).to(device, dtype).eval()
    encoder.set_backend(args.backend)
    seconds = 5.0 if args.quick else 60.0
    rows = []
    for streams, chunks in ((1, (40, 160, 640)), (16, (160,)), (64, (160,))):
        for chunk_ms in chunks:
            audio = speech(seconds if streams == 1 else seconds / 4)
            for batched in (True,) if streams == 1 else (True, False):
                rtf, median, p99 = stream_rtf(encoder, audio, chunk_ms, streams, batched, device, dtype)
                rows.append(
                    dict(
                        threads=threads,
                        streams=streams,
                        chunk_ms=chunk_ms,
                        mode="one stream" if streams == 1 else ("batched" if batched else "separate"),
                        rtf_per_stream=rtf,
                        latency_median_ms=median,
                        latency_p99_ms=p99,
                    )
                )
                print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short measurements (smoke test)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "kernels"])
    parser.add_argument("--threads", type=int, help="(internal) run one thread setting and print JSON")
    args = parser.parse_args()
    if args.threads:
        print("RESULT " + json.dumps(run_setting(args, args.threads)))
        return
    rows = []
    for threads in (1, os.cpu_count()):  # each setting in its own process: a clean thread pool
        cmd = [
            sys.executable,
            __file__,
            "--threads",
            str(threads),
            "--device",
            args.device,
            "--dtype",
            args.dtype,
            "--backend",
            args.backend,
        ] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows += json.loads(out.split("RESULT ", 1)[1])
    torch.set_num_threads(1)
    encoder = MambaEncoder(CONFIG).eval()
    curve, state_bytes = memory_over_stream(encoder, 0.05 if args.quick else 1.0, torch.device("cpu"), torch.float32)
    result = {
        "date": date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "torch": torch.__version__,
        "machine": describe(),
        "load_average": os.getloadavg(),
        "parameters": sum(p.numel() for p in encoder.parameters()),
        "config": CONFIG.to_dict(),
        "state_bytes_per_stream": state_bytes + FrontEnd().nbytes,
        "rows": rows,
        "rss_mb_per_minute": curve,
    }
    suffix = "_quick" if args.quick else ""
    (HERE / f"core{suffix}.json").write_text(json.dumps(result, indent=1))
    plot_memory(curve, HERE / f"core_memory{suffix}.png")
    (HERE / f"core{suffix}.md").write_text(report(result))
    print(report(result))


def plot_memory(curve, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(curve) + 1), curve)
    ax.set_xlabel("minutes of audio streamed (one stream, 160 ms chunks)")
    ax.set_ylabel("process RSS (MB)")
    ax.set_ylim(0, max(curve) * 1.2)
    ax.set_title("Memory over a long stream")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(r) -> str:
    lines = [
        "# Streaming core benchmark",
        "",
        f"Command: `{r['command']}` on {r['date']}; {r['machine']}, torch {r['torch']}, "
        f"load average at the end {tuple(round(x, 2) for x in r['load_average'])}.",
        f"Encoder: {r['parameters']:,} parameters ({r['config']['n_layers']} Mamba-2 layers, d_model "
        f"{r['config']['d_model']}, d_state {r['config']['d_state']}), PyTorch path, float32, CPU.",
        f"State per stream: {r['state_bytes_per_stream']:,} bytes (encoder caches + front-end carry), fixed.",
        "",
        "| threads | streams | mode | chunk | RTF per stream | chunk latency median | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['threads']} | {row['streams']} | {row['mode']} | {row['chunk_ms']} ms | "
            f"{row['rtf_per_stream']:.4f} | {row['latency_median_ms']:.2f} ms | {row['latency_p99_ms']:.2f} ms |"
        )
    curve = r["rss_mb_per_minute"]
    lines += [
        "",
        f"Memory over {len(curve)} minutes of one stream: RSS {curve[0]:.1f} MB after the first minute, "
        f"peak {max(curve):.1f} MB, last {curve[-1]:.1f} MB (growth after minute 5: "
        f"{curve[-1] - curve[min(4, len(curve) - 1)]:+.1f} MB). Plot: core_memory.png.",
        "",
        "GPU table: pending (no GPU machine in the session that wrote this file); run the command above "
        "with `--device cuda --dtype bf16 --backend kernels` and `--backend torch` on one.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
