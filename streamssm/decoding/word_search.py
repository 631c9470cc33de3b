"""CTC prefix beam search over words: a lexicon and a word language model, one frame at a time.

Each hypothesis is a token prefix with two probabilities, of the audio so far ending in a blank
(p_b) and in its last token (p_nb), as in any CTC prefix beam search. Its text is words (tokens
that start with sentencepiece's word mark begin a new word) and the word in progress; a word
counts when it is complete, with alpha * ln P(word | previous word) + beta from the `WordLM`, and a
word outside the lexicon (or a word in progress that no lexicon word starts with) scores
`oov_score` instead. Hypotheses are ranked by ln(p_b + p_nb) plus their words' scores, merged when
their texts and last tokens agree, and cut to `beam` (and to `prune` below the best).

Memory per stream is fixed: a hypothesis names its last token in a node store (token, frame,
log-probability and parent of every token any kept hypothesis has emitted in this utterance) of
capacity `beam` x `capacity_frames`; the search keeps at most `beam` new nodes a frame, and an
utterance ends at the latest after `capacity_frames` frames, when the store could be full. Everything else is `beam` numbers per
hypothesis. Frame by frame, so chunking and batching do not change the result.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from ..config import JSONConfig
from ..tokenizer import BLANK_ID, WORD_START, Tokenizer
from .word_lm import WordLM

NONE = -1  # no node: the empty prefix
HISTORY_MODULUS = (1 << 61) - 1  # completed words are hashed into one integer per hypothesis
CACHE_SIZE = 100_000  # answers each of the search's caches (lexicon checks, word scores) holds


@dataclass
class WordSearchConfig(JSONConfig):
    """beam: hypotheses kept; alpha: weight of the language model's ln-probabilities; beta: score
    of each word; oov_score: score of a word the lexicon lacks; bigram_weight: the word pair's
    share in P(word | previous word) (0: unigrams only; `WordLM.logprob`); token_min_logprob:
    tokens below it in a frame are not tried (the frame's best always is); prune: hypotheses this
    far below the best are dropped. alpha, beta, oov_score, bigram_weight and beam were chosen on
    development speech (benchmarks/word_search_sweep.md); token_min_logprob and prune are
    pyctcdecode's defaults."""

    beam: int = 16
    alpha: float = 0.3
    beta: float = 1.5
    oov_score: float = -6.0
    bigram_weight: float = 0.9
    token_min_logprob: float = -5.0
    prune: float = 10.0

    def __post_init__(self):
        if self.beam < 1 or self.prune <= 0:
            raise ValueError(f"beam must be >= 1 and prune > 0, got beam={self.beam}, prune={self.prune}")
        if not 0 <= self.bigram_weight < 1:  # 1 would give unlisted word pairs no probability at all
            raise ValueError(f"bigram_weight must be in [0, 1), got {self.bigram_weight}")


def remember(cache: dict, key, value):
    """Store `value` under `key` in a bounded cache (emptied when full); returns `value`."""
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def logaddexp(a: float, b: float) -> float:
    """ln(e^a + e^b) of two floats (numpy's ufunc costs more on scalars)."""
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


class Hypothesis:
    """One prefix: its probabilities, its text's state and the node of its last token."""

    __slots__ = ("p_b", "p_nb", "words_score", "node", "last", "partial", "previous", "history")

    def __init__(self, p_b, p_nb, words_score, node, last, partial, previous, history):
        self.p_b, self.p_nb, self.words_score = p_b, p_nb, words_score
        self.node, self.last, self.partial = node, last, partial  # last: its last token (blank if none)
        self.previous, self.history = previous, history  # last complete word's id; hash of the words


EMPTY = Hypothesis(0.0, -math.inf, 0.0, NONE, BLANK_ID, "", None, 0)


class WordSearchState:
    """One stream's search: the node store and the beam, all in fixed-size arrays."""

    def __init__(self, beam: int, capacity_frames: int):
        capacity = beam * capacity_frames
        self.tokens = np.zeros(capacity, np.int32)
        self.frames = np.zeros(capacity, np.int32)
        self.logprobs = np.zeros(capacity, np.float32)
        self.parents = np.zeros(capacity, np.int32)
        self.length = 0  # nodes in use
        self.frames_seen = 0  # frames of this utterance
        self.capacity_frames = capacity_frames
        # the beam: p_b, p_nb, words_score; node, previous word id (-1: none), words hash; partial from nodes
        self.scores = np.zeros((beam, 3), np.float64)
        self.links = np.zeros((beam, 3), np.int64)
        self.word_starts = np.zeros(beam, np.int32)  # tokens of the word in progress
        self.size = 0  # hypotheses in the beam (0: a fresh utterance)

    @property
    def nbytes(self) -> int:
        arrays = (self.tokens, self.frames, self.logprobs, self.parents, self.scores, self.links, self.word_starts)
        return sum(a.nbytes for a in arrays) + 32

    @property
    def full(self) -> bool:
        """Whether the utterance must end: another frame might not fit."""
        return self.frames_seen >= self.capacity_frames

    def clear(self):
        self.length = self.size = self.frames_seen = 0

    def path(self, node: int) -> list[int]:
        """The nodes from the utterance's first token to `node`."""
        nodes = []
        while node != NONE:
            nodes.append(node)
            node = int(self.parents[node])
        return nodes[::-1]


class WordSearch:
    """The search over one model's tokens; streams keep their own `WordSearchState`.

    For a run of frames of one stream: `beam = unpack(state)`, then `beam, speech = advance(state,
    beam, logprobs, frame)` per frame, then `pack(state, beam)`; `final(state, beam)` at the end of
    an utterance, then `state.clear()`.
    """

    def __init__(self, tokenizer: Tokenizer, lm: WordLM, config: WordSearchConfig | None = None):
        self.tokenizer, self.lm, self.config = tokenizer, lm, config or WordSearchConfig()
        processor = tokenizer.processor
        pieces = [processor.id_to_piece(i) for i in range(tokenizer.vocab_size)]
        self.starts_word = tokenizer.starts_word
        # what a token adds to the word in progress (special pieces spell nothing)
        self.spelling = ["" if p.startswith("<") and p.endswith(">") else p.removeprefix(WORD_START) for p in pieces]
        self.prefix_scores: dict[str, float] = {}  # partial_score's answers
        self.word_scores: dict[tuple[int | None, str], tuple[float, int | None]] = {}  # word_score's answers

    def new_state(self, capacity_frames: int) -> WordSearchState:
        """The state of a stream whose utterances last at most `capacity_frames` frames."""
        return WordSearchState(self.config.beam, capacity_frames)

    def unpack(self, state: WordSearchState) -> list[Hypothesis]:
        """The beam held in `state`'s arrays."""
        if not state.size:
            return [EMPTY]
        beam = []
        for row in range(state.size):
            p_b, p_nb, words_score = state.scores[row].tolist()
            node, previous, history = state.links[row].tolist()
            spelled, at = [], node
            for _ in range(int(state.word_starts[row])):
                spelled.append(int(state.tokens[at]))
                at = int(state.parents[at])
            last = int(state.tokens[node]) if node != NONE else BLANK_ID
            partial = "".join(self.spelling[t] for t in reversed(spelled))
            beam.append(
                Hypothesis(p_b, p_nb, words_score, node, last, partial, None if previous < 0 else previous, history)
            )
        return beam

    def pack(self, state: WordSearchState, beam: list[Hypothesis]):
        """`beam` into `state`'s arrays."""
        state.size = len(beam)
        for row, h in enumerate(beam):
            state.scores[row] = h.p_b, h.p_nb, h.words_score
            state.links[row] = h.node, -1 if h.previous is None else h.previous, h.history
            state.word_starts[row] = self.partial_tokens(state, h)

    def partial_tokens(self, state: WordSearchState, h: Hypothesis) -> int:
        """How many of `h`'s last tokens spell its word in progress."""
        count, node = 0, h.node
        while node != NONE:
            count += 1
            if self.starts_word[int(state.tokens[node])]:
                break
            node = int(state.parents[node])
        return count

    def word_score(self, previous: int | None, word: str) -> tuple[float, int | None]:
        """The score of a complete word after `previous`, and its id (None outside the lexicon)."""
        answer = self.word_scores.get((previous, word))
        if answer is None:
            word_id = self.lm.word_id(word)
            if word_id is None:
                answer = self.config.oov_score, None
            else:
                logprob = self.lm.logprob(previous, word_id, self.config.bigram_weight)
                answer = self.config.alpha * logprob + self.config.beta, word_id
            remember(self.word_scores, (previous, word), answer)
        return answer

    def partial_score(self, partial: str) -> float:
        score = self.prefix_scores.get(partial)
        if score is None:
            in_lexicon = not partial or self.lm.is_prefix(partial)
            score = remember(self.prefix_scores, partial, 0.0 if in_lexicon else self.config.oov_score)
        return score

    def rank(self, h: Hypothesis) -> float:
        return logaddexp(h.p_b, h.p_nb) + h.words_score + self.partial_score(h.partial)

    def extend(self, h: Hypothesis, token: int) -> Hypothesis:
        """`h` followed by `token` (its node is set when the hypothesis survives the frame)."""
        words_score, previous, history, partial = h.words_score, h.previous, h.history, h.partial
        if self.starts_word[token]:
            if partial:
                score, previous = self.word_score(previous, partial)
                words_score += score
                history = (history * 1_000_003 + zlib.crc32(partial.encode())) % HISTORY_MODULUS
            partial = ""
        return Hypothesis(
            -math.inf, -math.inf, words_score, h.node, token, partial + self.spelling[token], previous, history
        )

    def advance(
        self, state: WordSearchState, beam: list[Hypothesis], logprobs: np.ndarray, frame: int
    ) -> tuple[list[Hypothesis], bool]:
        """One frame of one stream: `logprobs` (V,) the CTC head's log-softmax. The new beam (best
        first; the nodes of its new tokens added to `state`), and whether the frame's best token is
        not the blank (speech, for the endpoint rules)."""
        config = self.config
        best_token = int(logprobs.argmax())
        tokens = set(np.flatnonzero(logprobs >= config.token_min_logprob).tolist()) | {best_token}
        tokens.discard(BLANK_ID)
        lp = logprobs.tolist()
        blank = lp[BLANK_ID]
        merged: dict = {}  # key -> [hypothesis, its best contribution, (parent node, token) or None]

        def add(h: Hypothesis, p_b: float, p_nb: float, origin):
            key = (h.history, h.partial, h.last)
            entry = merged.get(key)
            if entry is None:
                kept = Hypothesis(p_b, p_nb, h.words_score, h.node, h.last, h.partial, h.previous, h.history)
                merged[key] = [kept, max(p_b, p_nb), origin]
                return
            kept = entry[0]
            kept.p_b, kept.p_nb = logaddexp(kept.p_b, p_b), logaddexp(kept.p_nb, p_nb)
            if max(p_b, p_nb) > entry[1]:  # the likelier path to this text names its last token
                entry[1], entry[2] = max(p_b, p_nb), origin
                if origin is None:
                    kept.node = h.node

        for h in beam:
            total = logaddexp(h.p_b, h.p_nb)
            add(h, total + blank, h.p_nb + lp[h.last] if h.last != BLANK_ID else -math.inf, None)
            for token in tokens:
                p = (h.p_b if token == h.last else total) + lp[token]
                add(self.extend(h, token), -math.inf, p, (h.node, token))

        # best first; equals in the order they were found
        ranked = sorted((-self.rank(entry[0]), i, key) for i, (key, entry) in enumerate(merged.items()))
        worst, kept = ranked[0][0] + config.prune, []
        for negative_rank, _, key in ranked[: config.beam]:
            if negative_rank > worst:
                break
            h, _, origin = merged[key]
            if origin is not None:  # the likelier path ends with a token emitted now
                h.node = self.add_node(state, *origin, frame, lp[origin[1]])
            kept.append(h)
        state.frames_seen += 1
        return kept, best_token != BLANK_ID

    @staticmethod
    def add_node(state: WordSearchState, parent: int, token: int, frame: int, logprob: float) -> int:
        node = state.length
        state.tokens[node], state.frames[node], state.logprobs[node], state.parents[node] = (
            token,
            frame,
            logprob,
            parent,
        )
        state.length += 1
        return node

    @staticmethod
    def emissions(state: WordSearchState, node: int) -> list[tuple[int, int, float]]:
        """(token, frame, log-probability) of the tokens up to `node`."""
        return [(int(state.tokens[n]), int(state.frames[n]), float(state.logprobs[n])) for n in state.path(node)]

    @staticmethod
    def settled(state: WordSearchState, beam: list[Hypothesis]) -> int:
        """How many leading tokens every hypothesis shares: these stay in the utterance, since
        every later hypothesis extends one in the beam now."""
        common = beam[0].node
        for h in beam[1:]:
            other = h.node
            while common != other:  # a parent is stored before its children: climb the later one
                if common > other:
                    common = int(state.parents[common])
                else:
                    other = int(state.parents[other])
        return len(state.path(common))

    def best_complete(self, beam: list[Hypothesis]) -> Hypothesis:
        """The best hypothesis if the utterance ended now: its word in progress scored as a complete
        word. The text that partial events show, so that the final, which ends on it, seldom revises it."""

        def score(h: Hypothesis) -> float:
            if h.partial:
                return logaddexp(h.p_b, h.p_nb) + h.words_score + self.word_score(h.previous, h.partial)[0]
            return self.rank(h)

        return max(beam, key=score)  # first of equals: the beam is best first

    def final(self, state: WordSearchState, beam: list[Hypothesis]) -> list[tuple[int, int, float]]:
        """The emissions of `best_complete(beam)` (the end of the utterance)."""
        return self.emissions(state, self.best_complete(beam).node)

    def whole(self, logprobs: np.ndarray) -> list[tuple[int, int, float]]:
        """The emissions of one whole utterance's log-probabilities (T, V)."""
        state = self.new_state(max(1, len(logprobs)))
        beam = self.unpack(state)
        for frame, row in enumerate(logprobs):
            beam, _ = self.advance(state, beam, row, frame)
        return self.final(state, beam)
