"""Transcript: the tokens of one utterance in progress, turned into text, word times and events.

Each token is kept with the encoder frame it was emitted at and its log-probability, in buffers
of fixed capacity (the endpoint rules bound an utterance's length), so the memory of a stream
does not grow however long it runs.
"""

from __future__ import annotations

import math

import numpy as np

from ..events import Event, Word
from ..tokenizer import Tokenizer


class Transcript:
    """Frame f spans audio [f * frame_s, f * frame_s + frame_span_s]: a word starts where the frame
    of its first token starts and ends where the frame of its last token ends (emission times,
    so they include the model's delay)."""

    def __init__(self, tokenizer: Tokenizer, capacity: int, frame_s: float, frame_span_s: float):
        self.tokenizer, self.frame_s, self.frame_span_s = tokenizer, frame_s, frame_span_s
        self.tokens = np.zeros(capacity, np.int32)
        self.frames = np.zeros(capacity, np.int64)
        self.logprobs = np.zeros(capacity, np.float32)
        self.length = 0
        self.settled = 0  # leading tokens that stay in the utterance whatever comes next
        self.reported = ("", 0)  # text and stable words of the last partial event

    @property
    def nbytes(self) -> int:
        return self.tokens.nbytes + self.frames.nbytes + self.logprobs.nbytes + 16

    def __len__(self) -> int:
        return self.length

    def append(self, token: int, frame: int, logprob: float):
        if self.length == self.tokens.size:
            raise RuntimeError(f"transcript full ({self.tokens.size} tokens): the utterance should have been ended")
        self.tokens[self.length], self.frames[self.length], self.logprobs[self.length] = token, frame, logprob
        self.length += 1
        self.settled = self.length  # a greedy search never takes a token back

    def clear(self):
        self.length, self.settled, self.reported = 0, 0, ("", 0)

    def replace(self, emissions, settled: int):
        """The utterance's tokens so far are `emissions` [(token, frame, log-probability)] (a beam
        search's best may change its mind), of which the first `settled` stay whatever comes next;
        the last partial event stays reported."""
        self.length = 0
        for emission in emissions:
            self.append(*emission)
        self.settled = settled

    def word_spans(self) -> list[tuple[int, int, str]]:
        """(first token, end token, text) of each word."""
        starts_word = self.tokenizer.starts_word
        bounds = [i for i in range(self.length) if i == 0 or starts_word[self.tokens[i]]] + [self.length]
        spans = [(first, end, self.tokenizer.decode(self.tokens[first:end])) for first, end in zip(bounds, bounds[1:])]
        return [span for span in spans if span[2]]

    def word(self, first: int, end: int, text: str) -> Word:
        start = self.frames[first] * self.frame_s
        stop = self.frames[end - 1] * self.frame_s + self.frame_span_s
        return Word(text, round(float(start), 3), round(float(stop), 3))

    def event(self, kind: str) -> Event | None:
        """A "partial" or "final" event of the text so far (None while it has no words).

        The score is the geometric mean of the emitted tokens' probabilities. A partial's word is
        stable once the token after it (which starts the next word) is settled.
        """
        spans = self.word_spans()
        if not spans:
            return None
        words = tuple(self.word(*span) for span in spans)
        stable = len(words) if kind == "final" else sum(end < self.settled for _, end, _ in spans)
        score = math.exp(float(self.logprobs[: self.length].astype(np.float64).mean()))
        text = " ".join(w.text for w in words)
        return Event(kind, text, words[0].start, words[-1].end, score, words, stable)

    def partial(self) -> Event | None:
        """A "partial" event if the text or its stable words have changed since the last one (a
        token can add no characters)."""
        event = self.event("partial")
        if event is None or (event.text, event.stable) == self.reported:
            return None
        self.reported = event.text, event.stable
        return event
