"""Which keywords a transcribed utterance says, and where they end when that can be told.

Real connected speech trains a keyword spotter as negative audio only for the keywords it does not
say: `said_keywords` reads the transcript as a speaker may have read it (numbers as numbers and
digit by digit). A keyword it says becomes a positive where `keyword_ends` can place it: with word
times, at the end of each keyword said as whole words; without them, only a keyword that ends the
transcript (the last digit of "ZERO THREE FIVE ONE"), at the end of the utterance's speech.
"""

from __future__ import annotations

import re

from ..text import normalize_text, words_of
from .manifest import Utterance
from .text import spell_numbers, spoken_words


def said_keywords(text: str | None, keywords) -> frozenset[str]:
    """The keywords whose words the text says, however its numbers were read."""
    if not text:
        return frozenset()
    spoken = spoken_words(text)
    return frozenset(k for k in keywords if words_of(k) in spoken)


def keyword_ends(utterance: Utterance, keywords) -> list[tuple[str, float | None]]:
    """(keyword, end in seconds) of the keywords the utterance says where they can be placed; end
    None: at the end of the utterance's speech (a transcript without word times that ends in it)."""
    if utterance.words:
        return longest(timed_keyword_ends(utterance.words, keywords))
    text = utterance.text or ""
    if re.search(r"[0-9]", text):  # "911" may have been read "nine one one": its last word is unknown
        return []
    return longest([(k, None) for k in keywords if ends_with(text, k)])


def ends_with(text: str, keyword: str) -> bool:
    """Whether the text's last words are the keyword's."""
    return f" {normalize_text(text)}".endswith(f" {normalize_text(keyword)}")


def longest(ends: list[tuple[str, float | None]]) -> list[tuple[str, float | None]]:
    """Without a keyword that ends where a longer one ending in it ends ("computer" in "hey computer")."""
    return [
        (k, end)
        for k, end in ends
        if not any(other != k and other_end == end and ends_with(other, k) for other, other_end in ends)
    ]


def timed_keyword_ends(words: list[tuple[str, float, float]], keywords) -> list[tuple[str, float]]:
    """Each keyword said as whole words of `words` ([word, start, end]; numbers spelled out), with
    the end time of its last word."""
    tokens, word_end, last_of_word = [], [], []
    for word, _, end in words:
        spelled = normalize_text(spell_numbers(word)).split()
        tokens += spelled
        word_end += [end] * len(spelled)
        last_of_word += [i == len(spelled) - 1 for i in range(len(spelled))]
    first_of_word = [True] + last_of_word[:-1]
    ends = []
    for keyword in keywords:
        target = normalize_text(keyword).split()
        for i in range(len(tokens) - len(target) + 1):
            j = i + len(target) - 1
            if tokens[i : j + 1] == target and first_of_word[i] and last_of_word[j]:
                ends.append((keyword, word_end[j]))
    return sorted(ends, key=lambda item: item[1])
