"""Keywords from text: a streaming keyword search over a CTC model's per-frame token log-probabilities.

Each keyword is spelled in the model's tokens y1..yL and becomes a left-to-right CTC path
y1, blank, y2, blank, ..., yL (a blank between two tokens may be skipped unless they are the same
token). A path may start at any frame. Every frame, each state of every path keeps its best
partial alignment (Viterbi) scored against a filler, the unconstrained best token of the frame:
a frame costs log p(its path label) - max log p, never positive. A keyword's score at a frame is
exp(cost of the best alignment ending in yL there / L), its per-token likelihood ratio against
the filler: 1 when the greedy CTC output spells the keyword, lower the more the audio disagrees.

Detection follows the trained detector (`keywords.KeywordDetector`): once a keyword's score
reaches its threshold the search follows the peak (the best keyword above its threshold) and
reports it after `patience` frames without improvement, or at the end of the stream. Occurrences
do not overlap: a detection must start after the previous one ended, so one utterance fires once.
The state of a stream is one score and one start frame per path state, whatever the stream's
length; it advances frame by frame, so chunking and batching do not change the events.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..events import Event
from ..text import normalize_text
from ..tokenizer import BLANK_ID, UNK_ID
from .keywords import KeywordDecoding, with_thresholds

# The default threshold of a keyword of n letters is exp(LEVEL + SPREAD / sqrt(n)) (at most 1): the
# best chance match in other speech scores higher the shorter the keyword (a mean over fewer tokens
# spreads more), so short keywords need more. SPREAD is that assumed shape; LEVEL was set for the
# shipped asr model as the lowest at which none of the six wwb wake words fires on 0.19 h of held-out
# real speech (`python benchmarks/text_keywords.py --calibrate`).
LEVEL, SPREAD = -2.36, 2.0
PATIENCE = 2  # frames without improvement before a peak is reported


def default_threshold(keyword: str) -> float:
    """The threshold of a keyword's score, from the length of its text (letters)."""
    return min(1.0, math.exp(LEVEL + SPREAD / math.sqrt(letters(keyword))))


def letters(keyword: str) -> int:
    return sum(c.isalpha() for c in normalize_text(keyword))


def check_text(keyword) -> None:
    """ValueError unless `keyword` is text with letters."""
    if not isinstance(keyword, str) or not normalize_text(keyword):
        raise ValueError(f"keyword {keyword!r} has no letters to spell")


def spell(tokenizer, keyword: str) -> list[int]:
    """The tokens of `keyword`; ValueError for text that has no letters or that the model cannot spell."""
    check_text(keyword)
    tokens = tokenizer.encode(keyword)
    if UNK_ID in tokens:
        raise ValueError(f"keyword {keyword!r} has characters this model cannot spell")
    return tokens


def shifted(rows: torch.Tensor, n: int, fill) -> torch.Tensor:
    """`rows` (b, S) moved n places right along S, `fill` coming in: column s holds column s - n."""
    return torch.cat([rows.new_full((rows.shape[0], n), fill), rows], 1)[:, : rows.shape[1]]


class SearchState:
    """One stream's search: the best alignment score and start frame of every path state, the peak
    being followed and where the last detection ended."""

    def __init__(self, states: int):
        self.scores = torch.full((states,), -math.inf)
        self.starts = torch.zeros(states, dtype=torch.long)
        self.frames_seen = 0
        self.last_end = -1  # frame of the last detection
        self.candidate = None  # (keyword index, score, end frame, start frame) of the peak followed

    @property
    def nbytes(self) -> int:
        return self.scores.nbytes + self.starts.nbytes + 48


class KeywordSearch:
    """Keyword events for text keywords from a CTC model (an ASR model's CTC head).

    keywords: any texts with letters (each spelled in the model's tokens); thresholds: one value in
    (0, 1] for all keywords or a dict per keyword (default: `default_threshold`, from the text's
    length). Events carry the keyword as given.
    """

    head = "ctc"  # the chunk function's output `decode` takes: per-frame token log-probabilities
    edge_silence_s = KeywordDecoding.edge_silence_s  # silence before and after a stream, as for a spotter

    def __init__(self, model, keywords: list[str], thresholds: float | dict[str, float] | None = None):
        if not keywords:
            raise ValueError("keywords from text need at least one keyword")
        if len(set(map(normalize_text, keywords))) < len(keywords):
            raise ValueError(f"keywords {keywords} name the same text twice")
        self.model, self.keywords = model, list(keywords)
        spellings = [spell(model.tokenizer, k) for k in self.keywords]
        defaults = {k: default_threshold(k) for k in self.keywords}
        self.thresholds = with_thresholds(defaults, self.keywords, thresholds)
        features = model.config.features
        self.frame_s, self.time_offset = features.frame_s, features.frame_span_s
        self.report_delay_s = PATIENCE * self.frame_s  # after the peak frame
        self._build(spellings)

    def _build(self, spellings: list[list[int]]) -> None:
        """The states of all keywords' paths, one after another: label, entry and skip rules."""
        labels, first, ends = [], [], []
        for tokens in spellings:
            first.append(len(labels))
            for i, token in enumerate(tokens):
                labels += [BLANK_ID, token] if i else [token]
            ends.append(len(labels) - 1)
        self.labels = torch.tensor(labels)
        self.first = torch.zeros(len(labels), dtype=torch.bool)
        self.first[first] = True
        is_token = self.labels != BLANK_ID
        before_two = shifted(self.labels[None], 2, BLANK_ID)[0]
        self.skip = is_token & ~self.first & (self.labels != before_two)
        self.ends = torch.tensor(ends)
        self.lengths = torch.tensor([len(t) for t in spellings], dtype=torch.float32)
        self.threshold_array = np.array([self.thresholds[k] for k in self.keywords], np.float32)

    def new_stream(self) -> SearchState:
        return SearchState(len(self.labels))

    def decode(self, logprobs, lengths, streams: list[SearchState]) -> list[list[Event]]:
        """logprobs (b, T, vocabulary): per-frame token log-probabilities; lengths (b,) in frames."""
        scores, starts, last_scores, last_starts = self.advance(
            logprobs.float().cpu(),
            lengths.cpu(),
            torch.stack([s.scores for s in streams]),
            torch.stack([s.starts for s in streams]),
            torch.tensor([s.frames_seen for s in streams]),
        )
        events = []
        for i, (stream, n) in enumerate(zip(streams, lengths.tolist())):
            stream.scores, stream.starts = last_scores[i], last_starts[i]
            events.append(self._detect(stream, scores[i, :n].numpy(), starts[i, :n].numpy()))
            stream.frames_seen += n
        return events

    def tracks(self, logprobs) -> tuple[np.ndarray, np.ndarray]:
        """The keyword scores and their alignments' start frames, (T, K) each, of a whole stream's
        log-probabilities (T, vocabulary): what `detect` takes."""
        fresh = self.new_stream()
        scores, starts, _, _ = self.advance(
            logprobs[None].float().cpu(),
            torch.tensor([len(logprobs)]),
            fresh.scores[None],
            fresh.starts[None],
            torch.tensor([0]),
        )
        return scores[0].numpy(), starts[0].numpy()

    def detect(self, tracks, thresholds) -> list[Event]:
        """The events of a whole stream's `tracks` with other thresholds (an evaluation's sweep)."""
        search, stream = KeywordSearch(self.model, self.keywords, thresholds), self.new_stream()
        return search._detect(stream, *tracks) + search.flush(stream)

    @torch.no_grad()
    def advance(self, logprobs, lengths, scores, starts, frames_seen):
        """Run the paths of a batch of streams (path states `scores`, `starts` (b, S)) over their
        frames. Returns each frame's keyword scores (b, T, K), the start frames of those
        alignments (b, T, K), and the path states after each stream's last frame."""
        b, frames = logprobs.shape[:2]
        costs = logprobs[..., self.labels] - logprobs.max(-1, keepdim=True).values  # (b, T, S)
        fresh = torch.where(self.first, 0.0, -math.inf)
        no_entry, no_skip = self.first, ~self.skip
        out_scores = torch.empty(b, frames, len(self.ends))
        out_starts = torch.empty(b, frames, len(self.ends), dtype=torch.long)
        for t in range(frames):
            active = (t < lengths)[:, None]
            options = torch.stack(
                [
                    scores,
                    shifted(scores, 1, -math.inf).masked_fill(no_entry, -math.inf),
                    shifted(scores, 2, -math.inf).masked_fill(no_skip, -math.inf),
                    fresh.expand_as(scores),
                ]
            )
            best, which = options.max(0)
            origins = torch.stack(
                [
                    starts,
                    shifted(starts, 1, 0),
                    shifted(starts, 2, 0),
                    (frames_seen + t)[:, None].expand_as(starts),
                ]
            )
            new_starts = origins.gather(0, which[None])[0]
            scores = torch.where(active, best + costs[:, t], scores)
            starts = torch.where(active, new_starts, starts)
            out_scores[:, t] = scores[:, self.ends]
            out_starts[:, t] = starts[:, self.ends]
        return (out_scores / self.lengths).exp(), out_starts, scores, starts

    def _detect(self, stream: SearchState, scores: np.ndarray, starts: np.ndarray) -> list[Event]:
        """Peak following over one stream's frames of keyword scores (T, K)."""
        events = []
        hot = (scores >= self.threshold_array).any(1)
        for t in range(len(scores)):
            if not hot[t] and stream.candidate is None:
                continue
            frame = stream.frames_seen + t
            above = (scores[t] >= self.threshold_array) & (starts[t] > stream.last_end)
            if above.any():
                best = int(np.where(above, scores[t], -1.0).argmax())
                if stream.candidate is None or scores[t, best] > stream.candidate[1]:
                    stream.candidate = (best, float(scores[t, best]), frame, int(starts[t, best]))
            if stream.candidate is not None and frame - stream.candidate[2] >= PATIENCE:
                events.append(self._emit(stream))
        return events

    def flush(self, stream: SearchState) -> list[Event]:
        """At the end of the stream: report the peak being followed, if any."""
        return [self._emit(stream)] if stream.candidate is not None else []

    def _emit(self, stream: SearchState) -> Event:
        index, score, end, start = stream.candidate
        stream.candidate, stream.last_end = None, end
        return Event(
            "keyword",
            self.keywords[index],
            round(start * self.frame_s, 3),
            round(self.time_offset + end * self.frame_s, 3),
            score,
        )
