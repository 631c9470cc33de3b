"""Partial and final text from an ASR model: `SpeechDecoding` runs a frame search, a transcript
and the endpoint rules for every stream."""

from __future__ import annotations

import dataclasses

import torch

from ..events import Event
from ..features import SUBSAMPLING, FrontEnd
from ..nn.state import BatchedState
from . import SEARCHES
from .ctc import CTCGreedySearch
from .endpoint import EndpointConfig, EndpointDetector
from .search import FrameSearch
from .transcript import Transcript
from .transducer import GreedyTransducerSearch, beam_search
from .word_lm import english_lm
from .word_search import NONE, WordSearch, WordSearchConfig


def word_search_config(model_options: WordSearchConfig, given: WordSearchConfig | dict | None) -> WordSearchConfig:
    """The word search's options: `given`, or the model's with the fields of a `given` dict."""
    if isinstance(given, WordSearchConfig):
        return given
    unknown = sorted(set(given or {}) - {f.name for f in dataclasses.fields(WordSearchConfig)})
    if unknown:
        raise ValueError(f"unknown word_search option(s) {unknown}")
    return dataclasses.replace(model_options, **(given or {}))


class SpeechStreamState:
    """What the SpeechDecoding keeps per stream: search state (a BatchedState of a frame search or
    a WordSearchState), endpoint rules, the utterance's tokens."""

    def __init__(self, search, endpoint: EndpointDetector, transcript: Transcript):
        self.search, self.endpoint, self.transcript = search, endpoint, transcript
        self.frames_seen = 0
        self.shown_node = NONE  # the word search's node whose text the transcript holds

    @property
    def nbytes(self) -> int:
        return self.search.nbytes + self.endpoint.nbytes + self.transcript.nbytes + 16


class SpeechDecoding:
    """Partial and final text from an ASR model.

    Every frame of every stream goes through the search, then the stream's transcript: a "partial"
    event whenever the text changes, a "final" event at an endpoint, after which the text starts
    afresh (and the transducer's decoder restarts from the start symbol, as in training). Frame by
    frame, so chunking and batching change nothing.

    search: "transducer" (greedy), "ctc" (greedy) or "ctc-lm" (the CTC head's output searched for
    words of an English lexicon with a word language model, `word_search`; its partial text may
    change its mind, except its events' `stable` words); endpoint: EndpointConfig or a dict of its
    fields (trailing_silence_s, max_utterance_s); max_symbols_per_frame: the transducer's limit per
    frame; word_search: WordSearchConfig, or a dict of the fields that differ from the model's, for
    "ctc-lm". None takes the model's config.
    """

    edge_silence_s = 0.0  # no silence is added before or after a stream

    def __init__(
        self,
        model,
        search: str | None = None,
        endpoint: EndpointConfig | dict | None = None,
        max_symbols_per_frame: int | None = None,
        word_search: WordSearchConfig | dict | None = None,
    ):
        self.model, config = model, model.config
        search = config.search if search is None else search
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
        if word_search is not None and search != "ctc-lm":
            raise ValueError(f"word_search options are for search='ctc-lm', not {search!r}")
        symbols = config.max_symbols_per_frame if max_symbols_per_frame is None else max_symbols_per_frame
        self.search_name = search
        self.head = "transducer" if search == "transducer" else "ctc"  # the chunk function's output `decode` takes
        self.search: FrameSearch | WordSearch = (
            GreedyTransducerSearch(model.decoder, model.joiner, max_symbols_per_frame=symbols)
            if search == "transducer"
            else CTCGreedySearch(model.ctc_head)
            if search == "ctc"
            else WordSearch(model.tokenizer, english_lm(), word_search_config(config.word_search, word_search))
        )
        self.symbols_per_frame = symbols if search == "transducer" else 1
        self.endpoint = EndpointConfig(**endpoint) if isinstance(endpoint, dict) else endpoint or config.endpoint
        self.frame_s, self.frame_span_s = config.features.frame_s, config.features.frame_span_s

    @property
    def searches_words(self) -> bool:
        return isinstance(self.search, WordSearch)

    def new_stream(self) -> SpeechStreamState:
        endpoint = EndpointDetector(self.endpoint, self.frame_s)
        if self.searches_words:  # frames after the last token count too, and the search bounds them
            frames = endpoint.max_frames + endpoint.silence_frames
            search, capacity = self.search.new_state(frames), frames
        else:
            search, capacity = self.search.initial_state(1), endpoint.max_frames * self.symbols_per_frame
        transcript = Transcript(self.model.tokenizer, capacity, self.frame_s, self.frame_span_s)
        return SpeechStreamState(search, endpoint, transcript)

    def decode(self, inputs, lengths, streams: list[SpeechStreamState]) -> list[list[Event]]:
        """inputs (b, T, .): the search's per-frame inputs (its `prepare` of the encoder output)."""
        if self.searches_words:
            return self._decode_words(inputs, lengths, streams)
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

    def _decode_words(self, inputs, lengths, streams: list[SpeechStreamState]) -> list[list[Event]]:
        """`decode` for the word search: each stream on its own, frame by frame."""
        logprobs, search = inputs.float().cpu().numpy(), self.search
        events = [[] for _ in streams]
        for i, (stream, length) in enumerate(zip(streams, lengths.tolist())):
            state = stream.search
            beam = search.unpack(state)
            for t in range(length):
                frame, stream.frames_seen = stream.frames_seen, stream.frames_seen + 1
                beam, speech = search.advance(state, beam, logprobs[i, t], frame)
                shown = search.best_complete(beam)
                if shown.node != stream.shown_node:  # the text to show has changed
                    stream.shown_node = shown.node
                    emissions = search.emissions(state, stream.shown_node)
                    stream.transcript.replace(emissions, search.settled(state, beam))
                    if partial := stream.transcript.partial():
                        events[i].append(partial)
                if stream.endpoint.update(frame, speech) or state.full:
                    search.pack(state, beam)
                    events[i] += self.flush(stream)
                    beam = search.unpack(state)
            search.pack(state, beam)
        return events

    def _take_frame(self, stream: SpeechStreamState, emitted, events: list[Event]) -> bool:
        """One frame of one stream (the tokens a frame search emitted); True if its utterance ended here."""
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
        if self.searches_words:
            emissions = self.search.final(stream.search, self.search.unpack(stream.search))
            stream.transcript.replace(emissions, len(emissions))
            stream.search.clear()
            stream.shown_node = NONE
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
    greedy for CTC, the word search with the model's options for "ctc-lm"): its final event, or
    none if nothing was recognised."""
    encoded = encode_offline(model, audio, sample_rate)
    if encoded is None:
        return []
    if search == "transducer":
        emissions, _ = beam_search(model.decoder, model.joiner, encoded[0], beam)
    elif search == "ctc":
        emissions = CTCGreedySearch(model.ctc_head).run(encoded)[0][0]
    else:
        words = WordSearch(model.tokenizer, english_lm(), model.config.word_search)
        emissions = words.whole(CTCGreedySearch(model.ctc_head).prepare(encoded)[0].numpy())
    geometry = model.config.features
    transcript = Transcript(model.tokenizer, max(1, len(emissions)), geometry.frame_s, geometry.frame_span_s)
    for token, frame, logprob in emissions:
        transcript.append(token, frame, logprob)
    final = transcript.event("final")
    return [final] if final else []
