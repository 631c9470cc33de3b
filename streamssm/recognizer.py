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
depends on the kind: `KeywordDecoding` (keyword events) or `SpeechDecoding` (partial and final
text with endpointing). Both keep a fixed-size state per stream.
"""

from __future__ import annotations

import inspect

import torch

from .decoding.ctc import CTCGreedySearch
from .decoding.endpoint import EndpointConfig, EndpointDetector
from .decoding.keywords import KeywordDetector
from .decoding.search import FrameSearch
from .decoding.transcript import Transcript
from .decoding.transducer import GreedyTransducerSearch
from .events import Event
from .features import FeatureConfig, FrontEnd
from .models import SEARCHES, load_model
from .nn.encoder import SUBSAMPLING, EncoderState
from .nn.state import BatchedState


def frame_timing(features: FeatureConfig) -> tuple[float, float]:
    """(period, span) of an encoder frame in seconds: frame f covers [f * period, f * period + span]."""
    period = SUBSAMPLING * features.hop_length / features.sample_rate
    span = ((SUBSAMPLING - 1) * features.hop_length + features.win_length) / features.sample_rate
    return period, span


class KeywordDecoding:
    """Keyword events from a KWS model: per-frame posteriors through a KeywordDetector per stream."""

    def __init__(self, model, keywords=None, thresholds=None):
        self.model, config = model, model.config
        unknown = set(keywords or ()) - set(config.keywords)
        if unknown:
            raise ValueError(f"unknown keywords {sorted(unknown)}; this model knows {config.keywords}")
        self.keywords = list(keywords) if keywords else list(config.keywords)
        self.thresholds = {k: config.thresholds.get(k, config.default_threshold) for k in config.keywords}
        if isinstance(thresholds, (int, float)):
            thresholds = dict.fromkeys(self.keywords, thresholds)
        for keyword, value in (thresholds or {}).items():
            if keyword not in self.thresholds:
                raise ValueError(f"threshold for unknown keyword {keyword!r}")
            if not 0.0 < float(value) <= 1.0:
                raise ValueError(f"threshold for {keyword!r} must be in (0, 1], got {value}")
            self.thresholds[keyword] = float(value)

    def new_stream(self) -> KeywordDetector:
        config = self.model.config
        return KeywordDetector(
            config.keywords, self.thresholds, config.smoothing_frames, config.refractory_s,
            config.keyword_durations, report=set(self.keywords), time_offset=frame_timing(config.features)[1],
        )

    def decode(self, encoded, lengths, detectors: list[KeywordDetector]) -> list[list[Event]]:
        posteriors = self.model.head(encoded).float().softmax(-1)[..., 1:].cpu()
        return [detector.accept(posteriors[i, :n]) for i, (detector, n) in enumerate(zip(detectors, lengths.tolist()))]

    def flush(self, detector: KeywordDetector) -> list[Event]:
        return detector.flush()


class SpeechStreamState:
    """What the SpeechDecoding keeps per stream: search state, endpoint rules, the utterance's tokens."""

    def __init__(self, search: BatchedState, endpoint: EndpointDetector, transcript: Transcript):
        self.search, self.endpoint, self.transcript = search, endpoint, transcript
        self.frames_seen = 0

    @property
    def nbytes(self) -> int:
        return self.search.nbytes + self.endpoint.nbytes + self.transcript.nbytes + 8


class SpeechDecoding:
    """Partial and final text from an ASR model.

    Every frame of every stream goes through the search (greedy transducer or greedy CTC), then
    the stream's transcript: a "partial" event whenever the text grows, a "final" event at an
    endpoint, after which the text starts afresh (and the transducer's decoder restarts from the
    start symbol, as in training). Frame by frame, so chunking and batching change nothing.
    """

    def __init__(self, model, search: str | None = None, endpoint: EndpointConfig | dict | None = None,
                 max_symbols_per_frame: int | None = None):
        self.model, config = model, model.config
        search = config.search if search is None else search
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
        symbols = config.max_symbols_per_frame if max_symbols_per_frame is None else max_symbols_per_frame
        self.search_name = search
        self.search: FrameSearch = (
            GreedyTransducerSearch(model.decoder, model.joiner, max_symbols_per_frame=symbols)
            if search == "transducer" else CTCGreedySearch(model.ctc_head)
        )
        self.symbols_per_frame = symbols if search == "transducer" else 1
        self.endpoint = EndpointConfig(**endpoint) if isinstance(endpoint, dict) else endpoint or config.endpoint
        self.frame_s, self.frame_span_s = frame_timing(config.features)

    def new_stream(self) -> SpeechStreamState:
        endpoint = EndpointDetector(self.endpoint, self.frame_s)
        capacity = endpoint.max_frames * self.symbols_per_frame
        transcript = Transcript(self.model.tokenizer, capacity, self.frame_s, self.frame_span_s)
        return SpeechStreamState(self.search.initial_state(1), endpoint, transcript)

    def decode(self, encoded, lengths, streams: list[SpeechStreamState]) -> list[list[Event]]:
        inputs = self.search.prepare(encoded)
        state = BatchedState.stack([s.search for s in streams])
        events = [[] for _ in streams]
        for t in range(inputs.shape[1]):
            active = t < lengths
            emitted, state = self.search.step(inputs[:, t], state, active)
            ended = [i for i, (stream, live) in enumerate(zip(streams, active.tolist()))
                     if live and self._take_frame(stream, emitted[i], events[i])]
            if ended:
                state = self.search.reset(state, ended)
        for stream, stream_state in zip(streams, state.unbind()):
            stream.search = stream_state
        return events

    def _take_frame(self, stream: SpeechStreamState, emitted, events: list[Event]) -> bool:
        """One frame of one stream; True if its utterance ended here."""
        frame, stream.frames_seen = stream.frames_seen, stream.frames_seen + 1
        for token, logprob in emitted:
            stream.transcript.append(token, frame, logprob)
        if emitted and (partial := stream.transcript.partial()):
            events.append(partial)
        if not stream.endpoint.update(frame, bool(emitted)):
            return False
        events += self.flush(stream)
        return True

    def flush(self, stream: SpeechStreamState) -> list[Event]:
        """End the utterance in progress: its final event, if it has text."""
        final = stream.transcript.event("final")
        stream.transcript.clear()
        stream.endpoint.reset()
        return [final] if final else []


DECODINGS = {"kws": KeywordDecoding, "asr": SpeechDecoding}


class Stream:
    """One audio source: front end, encoder state and the decoding state, all of fixed size."""

    def __init__(self, recognizer: "StreamingRecognizer"):
        self.recognizer = recognizer
        self.frontend = FrontEnd(recognizer.model.config.features, frame_multiple=SUBSAMPLING)
        self.state = recognizer.model.initial_state(1)
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
        """Buffer the features of a chunk for the next decode; bad input raises, changing nothing."""
        if self.finished:
            raise RuntimeError("this stream is finished; create a new one")
        frames = self.frontend.accept(chunk, sample_rate, downmix=downmix)
        if frames.shape[0]:
            self.pending.append(frames)

    def accept_waveform(self, chunk, sample_rate: int, *, downmix: bool = False) -> list[Event]:
        """Feed a chunk (float in [-1, 1] or int16, any rate) and return the events it completed."""
        self.feed(chunk, sample_rate, downmix=downmix)
        return self.recognizer.decode_streams([self])[0]

    def finish(self) -> list[Event]:
        """Flush the end of the input and return the last events; the stream then takes no more audio."""
        if self.finished:
            return []
        tail = self.frontend.finish()
        if tail.shape[0]:
            self.pending.append(tail)
        events = self.recognizer.decode_streams([self])[0] + self.recognizer.decoding.flush(self.decoding_state)
        self.finished = True
        return events


class StreamingRecognizer:
    """A model shared by any number of streams.

    Options of a keyword spotter: `keywords` (report only these), `thresholds` (one value or per
    keyword). Options of a speech recogniser: `search` ("transducer" or "ctc"), `endpoint`
    (EndpointConfig or dict: trailing_silence_s, max_utterance_s), `max_symbols_per_frame`.
    Defaults come from the model's config.
    """

    def __init__(self, model, device=None, **options):
        self.model = model.eval()
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        decoding_class = DECODINGS[model.kind]
        known = set(inspect.signature(decoding_class).parameters) - {"model"}
        if set(options) - known:
            raise ValueError(f"unknown option(s) {sorted(set(options) - known)} for a {model.kind} model "
                             f"(its options: {', '.join(sorted(known))})")
        self.decoding = decoding_class(model, **options)

    @classmethod
    def from_pretrained(cls, name_or_path="kws", device=None, **options) -> "StreamingRecognizer":
        """A bundled model by name ("kws", "asr") or a model folder, with the options above."""
        return cls(load_model(name_or_path, device or "cpu"), device=device, **options)

    @property
    def keywords(self) -> list[str]:
        """The keywords reported (keyword spotters only)."""
        return self.decoding.keywords

    @property
    def thresholds(self) -> dict[str, float]:
        """The detection threshold of each keyword (keyword spotters only)."""
        return self.decoding.thresholds

    def create_stream(self) -> Stream:
        return Stream(self)

    @torch.no_grad()
    def decode_streams(self, streams: list[Stream]) -> list[list[Event]]:
        """Decode the fed audio of all streams as one batch; returns each stream's new events."""
        ready = [s for s in streams if s.pending]
        new_events = {}
        if ready:
            features = [torch.cat(s.pending) for s in ready]
            lengths = torch.tensor([f.shape[0] // SUBSAMPLING for f in features])
            batch = torch.nn.utils.rnn.pad_sequence(features, batch_first=True).to(self.device)
            state = EncoderState.stack([s.state for s in ready])
            encoded, state = self.model.encoder(batch, state, lengths if len(ready) > 1 else None)
            events = self.decoding.decode(encoded, lengths, [s.decoding_state for s in ready])
            for stream, stream_state, stream_events in zip(ready, state.unbind(), events):
                stream.state, stream.pending = stream_state, []
                new_events[id(stream)] = stream_events
        return [new_events.get(id(s), []) for s in streams]
