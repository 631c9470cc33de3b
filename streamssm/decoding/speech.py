"""Partial and final text from an ASR model: `SpeechDecoding` runs a frame search, a transcript
and the endpoint rules for every stream."""

from __future__ import annotations

import torch

from ..events import Event
from ..features import SUBSAMPLING, FrontEnd
from ..models import SEARCHES
from ..nn.state import BatchedState
from .ctc import CTCGreedySearch
from .endpoint import EndpointConfig, EndpointDetector
from .search import FrameSearch
from .transcript import Transcript
from .transducer import GreedyTransducerSearch, beam_search


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

    search: "transducer" or "ctc"; endpoint: EndpointConfig or a dict of its fields
    (trailing_silence_s, max_utterance_s); max_symbols_per_frame: the transducer's limit per
    frame. None takes the model's config.
    """

    edge_silence_s = 0.0  # no silence is added before or after a stream

    def __init__(
        self,
        model,
        search: str | None = None,
        endpoint: EndpointConfig | dict | None = None,
        max_symbols_per_frame: int | None = None,
    ):
        self.model, config = model, model.config
        search = config.search if search is None else search
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
        symbols = config.max_symbols_per_frame if max_symbols_per_frame is None else max_symbols_per_frame
        self.search_name = self.head = search  # head: the chunk function's output `decode` takes
        self.search: FrameSearch = (
            GreedyTransducerSearch(model.decoder, model.joiner, max_symbols_per_frame=symbols)
            if search == "transducer"
            else CTCGreedySearch(model.ctc_head)
        )
        self.symbols_per_frame = symbols if search == "transducer" else 1
        self.endpoint = EndpointConfig(**endpoint) if isinstance(endpoint, dict) else endpoint or config.endpoint
        self.frame_s, self.frame_span_s = config.features.frame_s, config.features.frame_span_s

    def new_stream(self) -> SpeechStreamState:
        endpoint = EndpointDetector(self.endpoint, self.frame_s)
        capacity = endpoint.max_frames * self.symbols_per_frame
        transcript = Transcript(self.model.tokenizer, capacity, self.frame_s, self.frame_span_s)
        return SpeechStreamState(self.search.initial_state(1), endpoint, transcript)

    def decode(self, inputs, lengths, streams: list[SpeechStreamState]) -> list[list[Event]]:
        """inputs (b, T, .): the search's per-frame inputs (its `prepare` of the encoder output)."""
        state = BatchedState.stack([s.search for s in streams])
        events = [[] for _ in streams]
        for t in range(inputs.shape[1]):
            active = t < lengths
            emitted, state = self.search.step(inputs[:, t], state, active)
            ended = [
                i
                for i, (stream, live) in enumerate(zip(streams, active.tolist()))
                if live and self._take_frame(stream, emitted[i], events[i])
            ]
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


@torch.no_grad()
def encode_offline(model, audio, sample_rate: int) -> torch.Tensor | None:
    """`audio` through the model's front end and encoder at once: (1, T, d), or None for audio
    too short for one frame."""
    frontend = FrontEnd(model.config.features, frame_multiple=SUBSAMPLING)
    features = torch.cat([frontend.accept(audio, sample_rate), frontend.finish()])
    if not features.shape[0]:
        return None
    encoded, _ = model.encoder(features[None].to(next(model.parameters()).device))
    return encoded


@torch.no_grad()
def decode_offline(model, audio, sample_rate: int, search: str = "transducer", beam: int = 4) -> list[Event]:
    """`audio` encoded at once and searched as one utterance (beam search for the transducer,
    greedy for CTC): its final event, or none if nothing was recognised."""
    encoded = encode_offline(model, audio, sample_rate)
    if encoded is None:
        return []
    if search == "transducer":
        emissions, _ = beam_search(model.decoder, model.joiner, encoded[0], beam)
    else:
        emissions = CTCGreedySearch(model.ctc_head).run(encoded)[0][0]
    geometry = model.config.features
    transcript = Transcript(model.tokenizer, max(1, len(emissions)), geometry.frame_s, geometry.frame_span_s)
    for token, frame, logprob in emissions:
        transcript.append(token, frame, logprob)
    final = transcript.event("final")
    return [final] if final else []
