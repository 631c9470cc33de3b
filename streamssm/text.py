"""The one text normaliser: what a transcript, a tokenizer's input and a keyword match compare."""

from __future__ import annotations

import re
import unicodedata


def normalize_text(text: str) -> str:
    """Lowercase words of letters and inner apostrophes, single-spaced; anything else separates words.

    Accents are dropped ("café" -> "cafe"); digits are dropped too, so numbers must be spelled
    out before this (the data side does that).
    """
    text = unicodedata.normalize("NFKD", text.replace("\u2019", "'")).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z]+(?:'[a-z]+)*", text))


def words_of(text: str) -> str:
    """`normalize_text` padded with one space each side: `words_of(k) in words_of(t)` tells whether
    text t says keyword k as whole words."""
    return f" {normalize_text(text)} "
