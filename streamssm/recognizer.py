"""StreamingRecognizer: one model, many light streams, events out.

    rec = StreamingRecognizer.from_pretrained("kws")      # or "asr"
    stream = rec.create_stream()
    for chunk in chunks:
        for ev in stream.accept_waveform(chunk, sample_rate=48000):
            print(ev.kind, ev.text, ev.start, ev.end, ev.score)
    events = stream.finish()

Many streams are stepped as one batch with `rec.decode_streams(streams)` after feeding each with
`stream.feed(chunk, sample_rate)`; per-stream results are the same as decoding each alone.

The recognizer runs the encoder for every kind of model; what turns encoder frames into events
depends on the task: keyword events (`spotting`: a spotter's `decoding.keywords.KeywordDecoding`,
a CTC keyword search for keywords given as text, or both) or partial and final text with
endpointing (`decoding.speech.SpeechDecoding`). Each keeps a fixed-size state per stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from .audio import as_mono_float32, check_sample_rate
from .decoding.endpoint import EndpointConfig
from .decoding.speech import SpeechDecoding
from .events import Event
from .features import SUBSAMPLING, FrontEnd
from .models import load_model, resolve_model_dir
from .nn.encoder import EncoderState
from .runtime import create_backend
from .spotting import keyword_spotting

TASKS = {"kws": "keyword spotting", "asr": "speech recognition"}
PIECE_S = 10.0  # longer input goes through the front end and the model in pieces of this length


class Stream:
    """One audio source: front end, encoder state and the decoding state, all of fixed size."""

    def __init__(self, recognizer: StreamingRecognizer):
        self.recognizer = recognizer
        self.frontend = FrontEnd(recognizer.model.config.features, SUBSAMPLING, recognizer.backend.analysis)
        self.state = recognizer.start_state
        self.decoding_state = recognizer.decoding.new_stream()
        self.pending: list[torch.Tensor] = []  # feature frames fed but not decoded yet
        self.finished = False

    @property
    def state_nbytes(self) -> int:
        """Bytes of carried state; constant for the life of the stream."""
        return self.frontend.nbytes + self.state.nbytes + self.decoding_state.nbytes

    @property
    def pending_frames(self) -> int:
        return sum(f.shape[0] for f in self.pending)

    def feed(self, chunk, sample_rate: int, *, downmix: bool = False) -> None:
        """Buffer the features of a chunk for the next decode; bad input raises, changing nothing.

        A long chunk goes through the front end in pieces of PIECE_S seconds (bounded memory).
        """
        if self.finished:
            raise RuntimeError("this stream is finished; create a new one")
        samples = as_mono_float32(chunk, downmix=downmix)
        step = max(1, round(check_sample_rate(sample_rate) * PIECE_S))
        for start in range(0, max(1, samples.size), step):
            frames = self.frontend.accept(samples[start : start + step], sample_rate)
            if frames.shape[0]:
                self.pending.append(frames)

    def accept_waveform(self, chunk, sample_rate: int, *, downmix: bool = False) -> list[Event]:
        """Feed a chunk (float in [-1, 1] or int16, any rate) and return the events it completed."""
        self.feed(chunk, sample_rate, downmix=downmix)
        return self.recognizer.decode_streams([self])[0]

    def run(self, chunks) -> Iterator[Event]:
        """The events of a whole source: each (chunk, sample_rate) of `chunks` fed in turn, then
        `finish()`. Events come as soon as their chunk is decoded."""
        for chunk, sample_rate in chunks:
            yield from self.accept_waveform(chunk, sample_rate)
        yield from self.finish()

    def finish(self) -> list[Event]:
        """Flush the end of the input and return the last events; the stream then takes no more audio.

        The decoding's `edge_silence_s` of silence goes through the model first, so that what was
        said just before the end is still reported (a model decides a little after the audio).
        """
        if self.finished:
            return []
        rate, silence_s = self.frontend.sample_rate, self.recognizer.decoding.edge_silence_s
        if rate and silence_s:
            self.feed(np.zeros(round(rate * silence_s), np.float32), rate)
        tail = self.frontend.finish()
        if tail.shape[0]:
            self.pending.append(tail)
        events = self.recognizer.decode_streams([self])[0] + self.recognizer.decoding.flush(self.decoding_state)
        self.finished = True
        return events

    def take_pending(self, limit: int) -> torch.Tensor:
        """Remove and return up to `limit` of the fed feature frames."""
        frames = self.pending[0] if len(self.pending) == 1 else torch.cat(self.pending)
        self.pending = [frames[limit:]] if frames.shape[0] > limit else []
        return frames[:limit]


class StreamingRecognizer:
    """A model shared by any number of streams.

    Options of keyword spotting (`spotting`): a keyword spotter, or an ASR model given keywords:
      keywords: report only these (default: every keyword of a spotter). A keyword a spotter was
        not trained on, or any keyword of an ASR model, is text, found by a keyword search over
        the CTC head's output (`decoding.keyword_search`; a spotter loads the bundled asr model
        for it, on the fastest backend it has files for); text without letters raises ValueError;
      thresholds: one detection threshold in (0, 1] for all keywords, or a dict per keyword.
    Options of speech recognition with an ASR model (`decoding.speech.SpeechDecoding`):
      search: "transducer", "ctc" (greedy searches) or "ctc-lm" (the CTC head's output searched for
        English words with a word language model, `decoding.word_search`);
      endpoint: EndpointConfig or a dict (trailing_silence_s, max_utterance_s);
      max_symbols_per_frame: the transducer's tokens per encoder frame at most;
      word_search: options of "ctc-lm" that differ from the model's (`decoding.word_search.WordSearchConfig`:
        beam, alpha, beta, oov_score, bigram_weight, token_min_logprob, prune).
    None takes the model's config; an option of the other task raises ValueError.

    threads: the CPU threads torch (or ONNX Runtime) uses while this recognizer decodes (for
    torch: set for each decode and restored after). Streaming decodes small chunks, which one
    thread does fastest and without competing with the rest of the program; None leaves the
    runtime's own setting.

    backend: what runs the model's chunk function (`runtime`): "torch" (the reference), "onnx"
    (ONNX Runtime on the files of `python -m streamssm.export`, in `model_dir`), "onnx-int8" (the
    same on the int8 files of `export --int8`; never chosen by default), or None: ONNX when
    onnxruntime is installed and `model_dir` has files of these weights, else torch.

    A keyword spotter's streams start as if after `edge_silence_s` of silence and hear as much
    again when they finish, so a keyword at either end of a recording is heard as in a live stream.
    """

    def __init__(
        self,
        model,
        device=None,
        *,
        keywords: list[str] | None = None,
        thresholds: float | dict[str, float] | None = None,
        search: str | None = None,
        endpoint: EndpointConfig | dict | None = None,
        max_symbols_per_frame: int | None = None,
        word_search: dict | None = None,
        threads: int | None = 1,
        backend: str | None = "torch",
        model_dir=None,
    ):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        self.threads = threads
        self.model = model.eval()
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        options = {
            "kws": {"keywords": keywords, "thresholds": thresholds},
            "asr": {
                "search": search,
                "endpoint": endpoint,
                "max_symbols_per_frame": max_symbols_per_frame,
                "word_search": word_search,
            },
        }
        # what the streams report: keywords (a spotter's, or an ASR model's given keywords) or text
        self.task = "kws" if model.kind == "kws" or keywords is not None else "asr"
        wrong = sorted(
            name
            for kind, given in options.items()
            if kind != self.task
            for name, value in given.items()
            if value is not None
        )
        if wrong:
            raise ValueError(
                f"unknown option(s) {wrong} for {TASKS[self.task]} with a {model.kind} model "
                f"(its options: {', '.join(options[self.task])})"
            )

        def backend_of(model, folder, head, name=backend):
            return create_backend(name, model, folder, head, self.device, threads)

        if self.task == "kws":
            self.decoding, self.backend = keyword_spotting(
                model, model_dir, keywords, thresholds, backend_of, self.device
            )
        else:
            self.decoding = SpeechDecoding(model, **options["asr"])
            self.backend = backend_of(model, model_dir, self.decoding.head)
        self.backend.attach(self.decoding)
        self.start_state = self._state_after_silence(self.decoding.edge_silence_s)

    @classmethod
    def from_pretrained(
        cls, name_or_path="kws", device=None, backend: str | None = None, **options
    ) -> StreamingRecognizer:
        """A bundled model by name ("kws", "asr") or a model folder, with the options of __init__
        (backend None: the fastest installed)."""
        folder = resolve_model_dir(name_or_path)
        return cls(load_model(folder, device or "cpu"), device=device, backend=backend, model_dir=folder, **options)

    @property
    def keywords(self) -> list[str]:
        """The keywords reported (keyword spotting only)."""
        return self.decoding.keywords

    @property
    def thresholds(self) -> dict[str, float]:
        """The detection threshold of each keyword (keyword spotting only)."""
        return self.decoding.thresholds

    def create_stream(self) -> Stream:
        return Stream(self)

    @contextmanager
    def _threads(self):
        previous = torch.get_num_threads()
        if self.threads is not None and self.threads != previous:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)

    @torch.no_grad()
    def _state_after_silence(self, seconds: float) -> EncoderState:
        """The encoder state of a stream that has heard `seconds` of digital silence: where every
        stream starts (states are never changed in place, so streams share it)."""
        state, config = self.backend.initial_state(), self.model.config.features
        frames = SUBSAMPLING * round(seconds / config.frame_s)
        if frames:
            silence = self.backend.analysis(
                np.zeros((frames - 1) * config.hop_length + config.win_length, np.float32), config
            )
            with self._threads():
                _, state = self.backend(silence[None].to(self.device), state, torch.tensor([frames // SUBSAMPLING]))
        return state

    @torch.no_grad()
    def decode_streams(self, streams: list[Stream]) -> list[list[Event]]:
        """Decode the fed audio of all streams as one batch; returns each stream's new events.

        Audio fed in long chunks is decoded in pieces of at most PIECE_S seconds (bounded memory).
        """
        new_events = {id(s): [] for s in streams}
        limit = SUBSAMPLING * max(1, round(PIECE_S / self.model.config.features.frame_s))
        with self._threads():
            while ready := [s for s in streams if s.pending]:
                features = [s.take_pending(limit) for s in ready]
                lengths = torch.tensor([f.shape[0] // SUBSAMPLING for f in features])
                batch = torch.nn.utils.rnn.pad_sequence(features, batch_first=True).to(self.device)
                state = EncoderState.stack([s.state for s in ready])
                outputs, state = self.backend(batch, state, lengths)
                events = self.decoding.decode(outputs, lengths, [s.decoding_state for s in ready])
                for stream, stream_state, stream_events in zip(ready, state.unbind(), events):
                    stream.state = stream_state
                    new_events[id(stream)] += stream_events
        return [new_events[id(s)] for s in streams]
