"""StreamingRecognizer: one model, many light streams, events out.

    rec = StreamingRecognizer.from_pretrained("kws")
    stream = rec.create_stream()
    for chunk in chunks:
        for ev in stream.accept_waveform(chunk, sample_rate=48000):
            print(ev.kind, ev.text, ev.start, ev.end, ev.score)
    events = stream.finish()

Many streams are stepped as one batch with `rec.decode_streams(streams)` after feeding each with
`stream.feed(chunk, sample_rate)`; per-stream results are the same as decoding each alone.
"""

from __future__ import annotations

import torch

from .decoding.keywords import KeywordDetector
from .events import Event
from .features import FrontEnd
from .models import load_model
from .nn.encoder import SUBSAMPLING, EncoderState


class Stream:
    """One audio source: front end, encoder state and detector, all of fixed size."""

    def __init__(self, recognizer: "StreamingRecognizer"):
        self.recognizer = recognizer
        config = recognizer.model.config
        self.frontend = FrontEnd(config.features, frame_multiple=SUBSAMPLING)
        self.state = recognizer.model.initial_state(1)
        self.detector = recognizer.new_detector()
        self.pending: list[torch.Tensor] = []  # feature frames fed but not decoded yet
        self.finished = False

    @property
    def state_nbytes(self) -> int:
        """Bytes of carried state; constant for the life of the stream."""
        return self.frontend.nbytes + self.state.nbytes + self.detector.nbytes

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
        events = self.recognizer.decode_streams([self])[0] + self.detector.flush()
        self.finished = True
        return events


class StreamingRecognizer:
    """A model shared by any number of streams."""

    def __init__(self, model, keywords=None, thresholds=None, device=None):
        self.model = model.eval()
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        config = model.config
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

    @classmethod
    def from_pretrained(cls, name_or_path="kws", device=None, **options) -> "StreamingRecognizer":
        """A bundled model by name ("kws") or a model folder; options: keywords, thresholds."""
        return cls(load_model(name_or_path, device or "cpu"), device=device, **options)

    def create_stream(self) -> Stream:
        return Stream(self)

    def new_detector(self) -> KeywordDetector:
        config = self.model.config
        features = config.features
        first_frame_end = ((SUBSAMPLING - 1) * features.hop_length + features.win_length) / features.sample_rate
        return KeywordDetector(
            config.keywords, self.thresholds, config.smoothing_frames, config.refractory_s,
            config.keyword_durations, report=set(self.keywords), time_offset=first_frame_end,
        )

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
            logits, state = self.model(batch, state, lengths if len(ready) > 1 else None)
            posteriors = logits.float().softmax(-1)[..., 1:].cpu()
            for i, (stream, stream_state) in enumerate(zip(ready, state.unbind())):
                stream.state, stream.pending = stream_state, []
                new_events[id(stream)] = stream.detector.accept(posteriors[i, : lengths[i]])
        return [new_events.get(id(s), []) for s in streams]
