"""A lexicon and a bigram word language model for the CTC word search (decoding/word_search.py).

    lm = WordLM.english()              # SymSpell's English word and word-pair counts (PyPI symspellpy)
    lm.is_prefix("centu")              # True: some word of the lexicon starts so
    lm.word_id("century")              # its id, or None outside the lexicon
    lm.logprob(lm.word_id("fifteenth"), lm.word_id("century"), 0.5)   # ln P(century | fifteenth)

The English counts are the data files of the `symspellpy` package (MIT): SymSpell's list of 82,765
words with their Google Books Ngram counts (CC BY 3.0; words also in SCOWL's lists) and its
243,342 word-pair counts. Only the files are read, not the package's code. The pair counts come on
another scale than the word counts, so a pair's probability is its share of the listed pairs that
start with the same word, interpolated with the word's own probability by a weight lambda:
P(w | v) = lambda * c(v w) / c(v .) + (1 - lambda) * P(w). A sentence's first word (v = None) and
pairs whose first word has no listed pair take P(w).
"""

from __future__ import annotations

import bisect
import functools
import importlib.resources
import math

import numpy as np

from ..text import normalize_text

WORD_FILE, PAIR_FILE = "frequency_dictionary_en_82_765.txt", "frequency_bigramdictionary_en_243_342.txt"


class WordLM:
    """Words (normalised as `text.normalize_text`), their unigram log-probabilities and bigram counts."""

    def __init__(self, word_counts: dict[str, float], pair_counts: dict[tuple[str, str], float]):
        if not word_counts:
            raise ValueError("a word language model needs at least one word")
        self.words = sorted(word_counts)  # for prefix lookups
        self.ids = {word: i for i, word in enumerate(self.words)}
        counts = np.array([word_counts[w] for w in self.words], np.float64)
        self.unigram = counts / counts.sum()
        pairs = sorted(
            (self.ids[v], self.ids[w], c) for (v, w), c in pair_counts.items() if v in self.ids and w in self.ids
        )
        first = np.array([v for v, _, _ in pairs], np.int64)
        self.pair_keys = first * len(self.words) + np.array([w for _, w, _ in pairs], np.int64)
        pair_counts = np.array([c for _, _, c in pairs], np.float64)
        totals = np.bincount(first, weights=pair_counts, minlength=len(self.words))
        self.pair_share = pair_counts / totals[first] if len(pairs) else pair_counts
        self.has_pairs = totals > 0

    @classmethod
    def english(cls) -> "WordLM":
        """SymSpell's English counts (see the module docstring)."""
        files = importlib.resources.files("symspellpy")
        words: dict[str, float] = {}
        for line in (files / WORD_FILE).read_text().splitlines():
            word, count = line.split()
            word = normalize_text(word)
            if word and " " not in word:
                words[word] = words.get(word, 0.0) + float(count)
        pairs: dict[tuple[str, str], float] = {}
        for line in (files / PAIR_FILE).read_text().splitlines():
            first, second, count = line.split()
            pairs[first, second] = pairs.get((first, second), 0.0) + float(count)
        return cls(words, pairs)

    def __len__(self) -> int:
        return len(self.words)

    def is_prefix(self, text: str) -> bool:
        """Whether some word starts with `text`."""
        i = bisect.bisect_left(self.words, text)
        return i < len(self.words) and self.words[i].startswith(text)

    def word_id(self, word: str) -> int | None:
        return self.ids.get(word)

    def logprob(self, previous: int | None, word: int, bigram_weight: float) -> float:
        """ln P(word | previous word), the pair's share weighted by `bigram_weight` (lambda);
        previous None at the start of a sentence."""
        p = self.unigram[word]
        if previous is not None and bigram_weight and self.has_pairs[previous]:
            key = previous * len(self.words) + word
            i = int(np.searchsorted(self.pair_keys, key))
            share = self.pair_share[i] if i < len(self.pair_keys) and self.pair_keys[i] == key else 0.0
            p = bigram_weight * share + (1 - bigram_weight) * p
        return math.log(p)


@functools.cache
def english_lm() -> WordLM:
    """`WordLM.english()`, read once per process."""
    return WordLM.english()
