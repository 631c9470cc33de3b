"""DecodeLoop: the streams of many network clients decoded together, off the asyncio event loop.

The servers (`streamssm.serve`, `streamssm.wyoming`) open one `Session` per client. A session takes
checked mono audio (`put`) and hands back lists of events (`events`). The loop collects every
session with audio waiting, up to `max_batch_size` of them (waiting at most `max_wait_ms` for a
batch to fill), then in one worker thread feeds each session's audio to its `Stream` and steps all
of them with `StreamingRecognizer.decode_streams` as one batch per recognizer. Per-stream results
are those of decoding each stream alone; only the worker thread ever touches a `Stream`.

Each session holds at most `max_queued_s` seconds of audio not decoded yet: `put` waits for room
(the client is slowed down through TCP). A client more than `max_ahead_s` seconds of audio ahead of
the wall clock is refused with `TooFast`: it sends faster than real time for ever.

`Recognizers` holds the served model (one recognizer per set of keyword options clients ask
for); `add_decode_options` / `decode_loop_of` give both servers the same command-line options.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .recognizer import StreamingRecognizer

END = None  # what `Session.events` returns after the events of `finish`


class TooFast(ValueError):
    """A client sent audio further ahead of the wall clock than the server allows."""


class Session:
    """One client's stream: audio received and not decoded yet, and the events coming back."""

    def __init__(self, loop: "DecodeLoop", recognizer: StreamingRecognizer):
        self.recognizer = recognizer
        self.stream = recognizer.create_stream()
        self.rate: int | None = None
        self._loop = loop
        self._chunks: list[np.ndarray] = []
        self._arrivals: list[float] = []
        self._queued = 0  # samples in _chunks
        self._received = 0  # samples since the start
        self._started: float | None = None
        self._finishing = False
        self._room = asyncio.Event()
        self._room.set()
        self._events: asyncio.Queue = asyncio.Queue()

    async def put(self, samples: np.ndarray, rate: int) -> None:
        """Queue checked mono float32 `samples` at `rate` Hz; waits while the queue is full."""
        if self.rate not in (None, rate):
            raise ValueError(f"sample rate changed from {self.rate} to {rate} Hz within one stream")
        self.rate, now = rate, time.monotonic()
        self._started = self._started or now
        self._received += len(samples)
        ahead = self._received / rate - (now - self._started)
        if ahead > self._loop.max_ahead_s:
            raise TooFast(f"audio is {ahead:.0f} s ahead of real time (at most {self._loop.max_ahead_s:g} s allowed)")
        while self._queued >= self._loop.max_queued_s * rate:
            self._room.clear()
            await self._room.wait()
        self._chunks.append(samples)
        self._arrivals.append(now)
        self._queued += len(samples)
        self._loop.ready(self)

    def finish(self) -> None:
        """End the input: the last events, then END, come out of `events`."""
        self._finishing = True
        self._loop.ready(self)

    def close(self) -> None:
        """Drop this session (the client left): its queued audio is not decoded."""
        self._loop.drop(self)

    async def events(self) -> list | None:
        """The next list of events, END after the last; raises the error that ended the stream."""
        item = await self._events.get()
        if isinstance(item, Exception):
            raise item
        return item

    @property
    def waiting_since(self) -> float:
        """When the oldest audio not decoded yet arrived (0 for a finish without audio)."""
        return self._arrivals[0] if self._arrivals else 0.0

    def take(self) -> tuple[list[np.ndarray], list[float], bool]:
        """The queued chunks, their arrival times, and whether to finish: for one decode round."""
        taken = self._chunks, self._arrivals, self._finishing
        self._chunks, self._arrivals, self._queued = [], [], 0
        if self._finishing:
            self._loop.drop(self)
        self._room.set()
        return taken

    def deliver(self, result: list | Exception, finished: bool) -> None:
        """A decode round's events for this session (or its error); END after the last."""
        self._events.put_nowait(result)
        if finished and not isinstance(result, Exception):
            self._events.put_nowait(END)


class Recognizers:
    """One model as StreamingRecognizers: `default`, and one for each set of keyword options that
    clients ask for (`get`: loaded once each; the last 16 are kept)."""

    def __init__(self, name: str, device=None, threads: int = 1, keywords=None, threshold: float | None = None):
        self.name, self.device, self.threads = name, device, threads
        self.keywords, self.threshold = keywords, threshold  # the server's own (--keywords, --threshold)
        self.default = self._load(None if keywords is None else tuple(keywords), threshold)

    async def get(self, keywords: list[str] | None = None, thresholds=None) -> StreamingRecognizer:
        """The recognizer reporting `keywords` with `thresholds` (as in StreamingRecognizer; the
        server's own where None); one not loaded yet is loaded in a thread, off the event loop."""
        if keywords is None and thresholds is None:
            return self.default
        keywords = self.keywords if keywords is None else keywords
        thresholds = self.threshold if thresholds is None else thresholds
        return await asyncio.to_thread(
            self._load,
            None if keywords is None else tuple(keywords),
            tuple(sorted(thresholds.items())) if isinstance(thresholds, dict) else thresholds,
        )

    @functools.lru_cache(maxsize=16)
    def _load(self, keywords: tuple | None, thresholds) -> StreamingRecognizer:
        options = {
            "keywords": None if keywords is None else list(keywords),
            "thresholds": dict(thresholds) if isinstance(thresholds, tuple) else thresholds,
        }
        return StreamingRecognizer.from_pretrained(
            self.name,
            device=self.device,
            threads=self.threads,
            **{name: value for name, value in options.items() if value is not None},
        )


class DecodeLoop:
    """Runs the decode rounds of all open sessions (start it with `run()` as an asyncio task)."""

    def __init__(
        self, max_batch_size: int = 64, max_wait_ms: float = 5.0, max_queued_s: float = 10.0, max_ahead_s: float = 60.0
    ):
        if max_batch_size < 1 or max_wait_ms < 0 or max_queued_s <= 0 or max_ahead_s <= 0:
            raise ValueError("max_batch_size >= 1, max_wait_ms >= 0, max_queued_s > 0 and max_ahead_s > 0")
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_ms / 1000
        self.max_queued_s, self.max_ahead_s = max_queued_s, max_ahead_s
        self.sessions: set[Session] = set()
        self._ready: set[Session] = set()  # sessions with audio or a finish waiting
        self.latencies: deque[float] = deque(maxlen=100_000)  # seconds from a chunk's arrival to its events
        self.rounds = self.streams_decoded = self.largest_batch = 0
        self._wake = asyncio.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="streamssm-decode")

    def open(self, recognizer: StreamingRecognizer) -> Session:
        session = Session(self, recognizer)
        self.sessions.add(session)
        return session

    def ready(self, session: Session) -> None:
        self._ready.add(session)
        self._wake.set()

    def drop(self, session: Session) -> None:
        self.sessions.discard(session)
        self._ready.discard(session)

    def stats(self) -> dict:
        """Open sessions, decode rounds so far, streams per round, chunk-to-events latency percentiles."""
        latency = np.percentile(self.latencies, [50, 99]).tolist() if self.latencies else [None, None]
        return {
            "sessions": len(self.sessions),
            "rounds": self.rounds,
            "largest_batch": self.largest_batch,
            "streams_per_round": self.streams_decoded / self.rounds if self.rounds else None,
            "latency_s": {"p50": latency[0], "p99": latency[1], "chunks": len(self.latencies)},
        }

    async def run_until_stopped(self) -> None:
        """Run the decode rounds until SIGINT or SIGTERM; an error in decoding ends it and is raised."""
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        decoding, stopping = asyncio.create_task(self.run()), asyncio.create_task(stop.wait())
        await asyncio.wait([decoding, stopping], return_when=asyncio.FIRST_COMPLETED)
        if decoding.done():
            decoding.result()
        decoding.cancel()
        stopping.cancel()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            work = [(session, *session.take()) for session in batch]
            results = await loop.run_in_executor(self._worker, self._decode, work)
            done = time.monotonic()
            for (session, _, arrivals, finishing), result in zip(work, results):
                self.latencies.extend(done - arrived for arrived in arrivals)
                session.deliver(result, finishing)
            self.rounds, self.streams_decoded = self.rounds + 1, self.streams_decoded + len(work)
            self.largest_batch = max(self.largest_batch, len(work))

    async def _collect(self) -> list[Session]:
        """Sessions with work, oldest audio first: as soon as the batch is full or max_wait_ms after
        the first one."""
        deadline = None
        while True:
            timeout = None
            if self._ready:
                now = time.monotonic()
                deadline = deadline or now + self.max_wait_s
                if len(self._ready) >= self.max_batch_size or now >= deadline:
                    batch = sorted(self._ready, key=lambda s: s.waiting_since)[: self.max_batch_size]
                    self._ready.difference_update(batch)
                    return batch
                timeout = deadline - now
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    def _decode(work) -> list:
        """In the worker thread: feed, decode one batch per recognizer, finish; per session its
        new events or the error that stopped it."""
        results: dict[Session, list | Exception] = {}
        groups = defaultdict(list)
        for session, chunks, _, _ in work:
            try:
                for chunk in chunks:
                    session.stream.feed(chunk, session.rate)
                groups[session.recognizer].append(session)
            except (TypeError, ValueError, RuntimeError) as error:
                results[session] = error
        for recognizer, sessions in groups.items():
            for session, events in zip(sessions, recognizer.decode_streams([s.stream for s in sessions])):
                results[session] = events
        for session, _, _, finishing in work:
            if finishing and not isinstance(results[session], Exception):
                results[session] = results[session] + session.stream.finish()
        return [results[session] for session, *_ in work]


def add_decode_options(parser: argparse.ArgumentParser) -> None:
    """The options both servers share: the model and its keywords, batching, queue limits, threads."""
    parser.add_argument("--model", default="kws", help="bundled model name (kws, asr) or model folder (default: kws)")
    parser.add_argument(
        "--keywords",
        nargs="+",
        help="report these keywords (default: all a keyword model knows): its own, or any text, in quotes "
        "for several words, which the bundled asr model spells (with --model asr: keywords instead of text)",
    )
    parser.add_argument("--threshold", type=float, help="one detection threshold in (0, 1] for all keywords")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=64,
        help="streams decoded together in one step (default: 64; 1: one at a time)",
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="how long a decode step waits for its batch to fill (default: 5)"
    )
    parser.add_argument(
        "--max-queued-s",
        type=float,
        default=10.0,
        help="seconds of audio per connection waiting to be decoded before its reading pauses (default: 10)",
    )
    parser.add_argument(
        "--max-ahead-s",
        type=float,
        default=60.0,
        help="how far ahead of real time a client may send before it is closed (default: 60; inf: no limit)",
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model (default: 1)")
    parser.add_argument("--device", help="torch device for the model (default: cpu)")


def decode_loop_of(args) -> tuple[Recognizers, DecodeLoop]:
    """The model of --model and a decode loop with the options of `add_decode_options`."""
    decode_loop = DecodeLoop(args.max_batch_size, args.max_wait_ms, args.max_queued_s, args.max_ahead_s)
    return Recognizers(args.model, args.device, args.threads, args.keywords, args.threshold), decode_loop
