"""Load test of python -m streamssm.serve: N WebSocket clients on loopback, each streaming a real
recording, against one server; batched decoding (--max-batch-size 64) beside one stream at a time (1).

    python benchmarks/serve_load.py            # the recorded run: writes benchmarks/serve.md and serve.json
    python benchmarks/serve_load.py --kws-clients 1 2 --asr-clients 1 --out /tmp/serve_load   # a short check

Each client sends 16-bit PCM in 100 ms messages: paced in real time ("real time": a microphone), or
as fast as the server takes them ("flood": files; the server then runs with --max-ahead-s inf).
Client starts are spread over the first seconds so that 1000 connections do not arrive in one burst.
Recorded per run:
- connections failed: clients whose opening handshake the server did not complete (it drops them
  when it cannot answer within its handshake timeout); the other columns count the rest;
- events lost: events of the recording decoded alone (StreamingRecognizer, same model) that a client
  did not get exactly (kind, text, times; score within 1e-4), plus events it got that decoding alone
  does not give; must be 0;
- latency: the server's own p50/p99 from a chunk's arrival to its events being ready to send (GET
  /info), and the p99 over clients of the time from sending {"eof": true} to receiving {"type": "eof"};
- streams per step: how many streams the server decoded together on average (GET /info);
- the server process's RSS before the clients connect and its peak during the run; its CPU use (cores busy
  on average over the run);
- real time: the server keeps up when its p99 chunk-to-events latency is under REALTIME_P99_S;
  the table names the largest N tried that stays real time. Flood runs report throughput instead:
  seconds of audio decoded per second of wall time, all clients together.
The clients run in this process on the same machine as the server, so they take CPU from it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
from bench_core import reader_clips  # benchmarks/bench_core.py
from machine import describe  # benchmarks/machine.py
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidMessage

from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split
from streamssm.recognizer import StreamingRecognizer
from streamssm.serve import event_message

HERE = Path(__file__).resolve().parent
SR = 16000
CHUNK_S = 0.1
REALTIME_P99_S = 0.5
BATCHES = {"batched": 64, "one at a time": 1}


def recording(model: str) -> np.ndarray:
    """What each client streams, int16 at 16 kHz: KWS, 4 held-out wake-word clips with pauses
    (about 12 s); ASR, 2 read sentences with pauses (endpoints close each)."""
    pause = np.zeros(SR, np.float32)
    if model == "kws":
        clips = [read_audio(u.audio) for u in real_kws_split("wwb")["eval"][::60][:4]]
    else:
        clips = reader_clips()[:2]
    audio = np.concatenate([part for clip in clips for part in (pause, clip)] + [pause])
    return np.round(audio * 32767).astype(np.int16)


def key(message: dict) -> tuple:
    return message["type"], message["text"], message["start"], message["end"]


def lost_events(got: list[dict], want: list[dict]) -> int:
    """Events of `want` missing from `got` (or with another score), plus events `got` has in excess."""
    scores = {key(m): m["score"] for m in got if m["type"] != "eof"}
    missing = sum(1 for m in want if abs(scores.pop(key(m), np.inf) - m["score"]) > 1e-4)
    return missing + len(scores)


async def client(url: str, audio: bytes, realtime: bool, delay: float) -> tuple[list[dict], float] | None:
    """Stream `audio` and {"eof": true}; the events received and the seconds from eof to eof, or
    None when the server did not complete the opening handshake (an overloaded server drops it)."""
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    step = int(CHUNK_S * SR) * 2
    try:
        ws = await connect(url, max_size=None, open_timeout=300, close_timeout=300, ping_interval=None)
    except (InvalidHandshake, InvalidMessage, OSError):
        return None
    async with ws:
        started = loop.time()
        for i, start in enumerate(range(0, len(audio), step)):
            if realtime:
                await asyncio.sleep(max(0.0, started + i * CHUNK_S - loop.time()))
            await ws.send(audio[start : start + step])
        sent_eof = loop.time()
        await ws.send(json.dumps({"eof": True}))
        received = [json.loads(message) async for message in ws]
    return received, loop.time() - sent_eof


class ServerProcess:
    """python -m streamssm.serve with the given options; its RSS and CPU time sampled while it runs."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamssm.serve", "--port", "0", *args],
            stderr=subprocess.PIPE,
            text=True,
            cwd=HERE.parent,
        )
        before = []  # warnings, if any, come before the line the server prints once it listens
        while not (line := self.process.stderr.readline()).startswith("serving"):
            if not line:
                raise RuntimeError(f"the server did not start: {''.join(before)}")
            before.append(line)
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # a full pipe would block it
        self.http = line.split(" on ")[1].split()[0]
        self.peak_rss_mb = 0.0

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime in clock ticks of 10 ms

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

    async def sample_rss(self) -> None:
        while True:
            self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())
            await asyncio.sleep(0.25)

    def info(self) -> dict:
        return json.load(urllib.request.urlopen(self.http + "info", timeout=60))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


async def load(server: ServerProcess, n: int, audio: np.ndarray, realtime: bool) -> tuple[list, float]:
    url = server.http.replace("http://", "ws://")
    spread = min(5.0, n / 200)
    sampler = asyncio.create_task(server.sample_rss())
    started = time.monotonic()
    results = await asyncio.gather(
        *(client(url, audio.tobytes(), realtime, random.uniform(0, spread)) for _ in range(n))
    )
    sampler.cancel()
    return results, time.monotonic() - started


def run_one(model: str, batch: int, n: int, realtime: bool, audio: np.ndarray, want: list[dict]) -> dict:
    args = ["--model", model, "--max-batch-size", str(batch), "--max-connections", str(n + 10)]
    server = ServerProcess(*args, *([] if realtime else ["--max-ahead-s", "inf"]))
    try:
        cpu_before, rss_before = server.cpu_s(), server.rss_mb()
        outcomes, wall_s = asyncio.run(load(server, n, audio, realtime))
        cpu_s, info = server.cpu_s() - cpu_before, server.info()
    finally:
        server.stop()
    results = [outcome for outcome in outcomes if outcome is not None]
    latency = info["latency_s"]
    row = {
        "model": model,
        "decoding": next(k for k, v in BATCHES.items() if v == batch),
        "clients": n,
        "mode": "real time" if realtime else "flood",
        "connections_failed": n - len(results),
        "events_lost": sum(lost_events(got, want) for got, _ in results),
        "latency_p50_ms": 1000 * latency["p50"],
        "latency_p99_ms": 1000 * latency["p99"],
        "eof_p99_ms": 1000 * float(np.percentile([lag for _, lag in results], 99)) if results else float("nan"),
        "streams_per_round": info["streams_per_round"],
        "rss_before_mb": rss_before,
        "peak_rss_mb": server.peak_rss_mb,
        "cpu_cores": cpu_s / wall_s,
        "wall_s": wall_s,
        "audio_s_per_s": len(results) * len(audio) / SR / wall_s,
    }
    row["real_time"] = realtime and latency["p99"] < REALTIME_P99_S and not row["connections_failed"]
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| model | decoding | mode | clients | connections failed | events lost | p50 / p99 chunk to events (ms) "
        "| p99 eof (ms) | streams per step | RSS idle / peak (MB) | CPU (cores) | audio s per s | real time |",
        "|" + "---|" * 13,
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['decoding']} | {r['mode']} | {r['clients']} | {r['connections_failed']} "
            f"| {r['events_lost']} "
            f"| {r['latency_p50_ms']:.0f} / {r['latency_p99_ms']:.0f} | {r['eof_p99_ms']:.0f} "
            f"| {r['streams_per_round']:.1f} "
            f"| {r['rss_before_mb']:.0f} / {r['peak_rss_mb']:.0f} | {r['cpu_cores']:.2f} | {r['audio_s_per_s']:.0f} "
            f"| {'yes' if r['real_time'] else '-' if r['mode'] == 'flood' else 'no'} |"
        )
    lines.append("")
    for model in dict.fromkeys(r["model"] for r in rows):
        for decoding in BATCHES:
            kept = [
                r["clients"] for r in rows if (r["model"], r["decoding"], r["real_time"]) == (model, decoding, True)
            ]
            lines.append(
                f"- {model}, {decoding}: largest N tried that stays real time: {max(kept) if kept else 'none'}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kws-clients", type=int, nargs="*", default=[1, 10, 50, 200, 1000])
    parser.add_argument("--asr-clients", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--out", type=Path, default=HERE / "serve", help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1000 sockets each side; the server inherits it
    rows, seconds = [], {}
    for model, counts in (("kws", args.kws_clients), ("asr", args.asr_clients)):
        if not counts:
            continue
        audio = recording(model)
        seconds[model] = len(audio) / SR
        stream = StreamingRecognizer.from_pretrained(model).create_stream()
        want = [json.loads(event_message(e)) for e in stream.run([(audio, SR)])]
        for realtime in (True, False):
            for batch in BATCHES.values():
                rows += [run_one(model, batch, n, realtime, audio, want) for n in counts]
    command = "python benchmarks/serve_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = (
        f"# python -m streamssm.serve under load\n\n`{command.strip()}` on {describe()}, {date.today()}.\n"
        f"Each client streams {', '.join(f'{s:.1f} s ({m})' for m, s in seconds.items())} of real speech; "
        f"the script's docstring says what each column measures.\n\n{table(rows)}\n"
    )
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    args.out.with_suffix(".md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
