"""What reports a recognizer's keywords: names a keyword spotter was trained on go to its head
(`decoding.keywords.KeywordDecoding`), any other text to a CTC keyword search
(`decoding.keyword_search.KeywordSearch`) on a model that spells: the recognizer's own ASR model,
or, for a spotter, the bundled ASR model (`SPELLER`) loaded beside it.

When a stream needs both, `PairedBackend` runs the two models' chunk functions on the same
features (each with its own encoder state, together a `PairedState`) and `PairedDecoding` gives
each output its decoding and merges their events in time order.
"""

from __future__ import annotations

import functools

from .decoding.keyword_search import KeywordSearch, check_text
from .decoding.keywords import KeywordDecoding
from .features import frames_log_mel, log_mel, sample_frames
from .models import load_model, resolve_model_dir
from .nn.state import BatchedState

SPELLER = "asr"  # the bundled model that spells the keywords a spotter was not trained on


@functools.lru_cache(maxsize=4)
def speller(device: str):
    """The spelling model on `device`, loaded once (streams and recognizers only read it)."""
    folder = resolve_model_dir(SPELLER)
    return load_model(folder, device), folder


def keyword_spotting(model, folder, keywords, thresholds, backend_of, device):
    """(decoding, backend) reporting `keywords` of `model` (a keyword spotter or an ASR model);
    `backend_of(model, folder, head)` makes a model's backend."""
    if model.kind == "asr":
        search = KeywordSearch(model, keywords or [], thresholds)
        return search, backend_of(model, folder, search.head)
    text = [k for k in keywords or () if k not in model.config.keywords]
    if not text:
        decoding = KeywordDecoding(model, keywords, thresholds)
        return decoding, backend_of(model, folder, decoding.head)
    for keyword in text:  # before loading the speller
        check_text(keyword)
    spelling, spelling_folder = speller(str(device))
    if spelling.config.features != model.config.features:
        raise ValueError(f"{spelling_folder} takes other features than {folder}; it cannot spell for it")
    trained = [k for k in keywords if k not in text]
    if isinstance(thresholds, dict):
        text_thresholds = {k: v for k, v in thresholds.items() if k in text}
        thresholds = {k: v for k, v in thresholds.items() if k not in text}
    else:
        text_thresholds = thresholds
    search = KeywordSearch(spelling, text, text_thresholds)
    search_backend = backend_of(spelling, spelling_folder, search.head, None)
    if not trained:  # the spotter's own head has nothing to report
        KeywordDecoding(model, None, thresholds)  # still checks the thresholds given
        return search, search_backend
    decoding = PairedDecoding(KeywordDecoding(model, trained, thresholds), search, keywords)
    return decoding, PairedBackend([backend_of(model, folder, "logits"), search_backend], model.config.features)


class PairedState(BatchedState):
    """The encoder states of two models for the same streams."""

    def __init__(self, first: BatchedState, second: BatchedState):
        self.parts = (first, second)

    def tensors(self):
        return [*self.parts[0].tensors(), *self.parts[1].tensors()]

    def _rebuild(self, tensors) -> PairedState:
        tensors, split = list(tensors), len(self.parts[0].tensors())
        return PairedState(self.parts[0]._rebuild(tensors[:split]), self.parts[1]._rebuild(tensors[split:]))


class PairedBackend:
    """Two models' backends on one stream's features: outputs (first's, second's), a PairedState.

    The streams' front ends give sample frames when either backend computes its own log-mel, and
    the log-mel of the other is computed here from them (float64, the same as `log_mel`)."""

    def __init__(self, backends, features):
        self.backends, self.features = backends, features
        own = [b.analysis is sample_frames for b in backends]
        self.analysis = sample_frames if any(own) else log_mel
        self.needs_log_mel = [self.analysis is sample_frames and not o for o in own]

    def attach(self, decoding):
        for backend, part in zip(self.backends, decoding.decodings):
            backend.attach(part)

    def initial_state(self) -> PairedState:
        return PairedState(*(b.initial_state() for b in self.backends))

    def __call__(self, frames, state: PairedState, lengths):
        outputs, states = [], []
        for backend, part, convert in zip(self.backends, state.parts, self.needs_log_mel):
            output, new = backend(frames_log_mel(frames, self.features) if convert else frames, part, lengths)
            outputs.append(output)
            states.append(new)
        return tuple(outputs), PairedState(*states)


class PairedStreamState:
    """A stream's two decoding states."""

    def __init__(self, parts):
        self.parts = parts

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)


class PairedDecoding:
    """Trained keywords (a KeywordDecoding) and text keywords (a KeywordSearch) on one stream."""

    def __init__(self, trained: KeywordDecoding, text: KeywordSearch, keywords: list[str]):
        self.decodings = (trained, text)
        self.keywords = list(keywords)
        self.thresholds = {**trained.thresholds, **text.thresholds}
        self.edge_silence_s = trained.edge_silence_s

    def new_stream(self) -> PairedStreamState:
        return PairedStreamState([d.new_stream() for d in self.decodings])

    def decode(self, outputs, lengths, streams: list[PairedStreamState]):
        found = [
            d.decode(o, lengths, [s.parts[i] for s in streams]) for i, (d, o) in enumerate(zip(self.decodings, outputs))
        ]
        return [sorted(a + b, key=lambda e: e.end) for a, b in zip(*found)]

    def flush(self, stream: PairedStreamState):
        return sorted((e for d, s in zip(self.decodings, stream.parts) for e in d.flush(s)), key=lambda e: e.end)
