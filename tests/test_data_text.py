"""Sentence text: numbers spelled out, cleaning, and a train/held-out split that never overlaps."""

import shutil

import pytest

from streamssm.data import text
from streamssm.text import normalize_text


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (101, "one hundred one"),
        (1204, "one thousand two hundred four"),
        (20000, "twenty thousand"),
        (3000000, "three million"),
    ],
)
def test_number_to_words(n, words):
    assert text.number_to_words(n) == words


@pytest.mark.parametrize(
    "raw, spoken",
    [
        ("I have 3 cats and 1,500 fish.", "I have three cats and one thousand five hundred fish."),
        (
            "In 1984 and 1905 it rose 2.5%.",
            "In nineteen eighty four and nineteen oh five it rose two point five percent.",
        ),
        ("the 2nd and 21st and 100th", "the second and twenty first and one hundredth"),
        ("in 2024", "in two thousand twenty four"),
    ],
)
def test_spell_numbers(raw, spoken):
    assert text.spell_numbers(raw) == spoken


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        (
            "\u201cLet there be light,\u201d and there was light\u2014and more (really) good.",
            "Let there be light, and there was light, and more really good.",
        ),
        ("A well-known fact: it's 12 o'clock.", "A well known fact: it's twelve o'clock."),
        ("Mr. Smith went to the store.", None),  # abbreviation
        ("The IBM machine was fast.", None),  # acronym
        ("Meet me at 10:30 tomorrow.", None),  # time
        ("It costs $5 now, friend.", None),  # symbol
        ("Too short.", None),
    ],
)
def test_clean_sentence(raw, cleaned):
    assert text.clean_sentence(raw) == cleaned


def test_split_dedups_by_transcript_and_never_overlaps():
    sentences = [f"The {word} sat on the mat number {n}." for word in ("cat", "dog", "hen") for n in range(200)]
    sentences += [s.upper().replace("THE", "the").replace(".", "!") for s in sentences[:50]]  # same words
    parts = text.split_text(sentences)
    train = {normalize_text(s) for s in parts["train"]}
    heldout = {normalize_text(s) for s in parts["heldout"]}
    assert len(train) == len(parts["train"]) and len(heldout) == len(parts["heldout"])
    assert not train & heldout and len(train) + len(heldout) == 600
    assert 0.02 < len(heldout) / 600 < 0.1
    assert parts == text.split_text(sentences)


@pytest.mark.skipif(not (text.WORDNET_DIR / "data.noun").exists(), reason="wordnet-base is not installed")
def test_wordnet_examples_split():
    parts = text.split_text(text.wordnet_examples())
    assert len(parts["train"]) > 30000 and len(parts["heldout"]) > 1000
    assert not {normalize_text(s) for s in parts["train"]} & {normalize_text(s) for s in parts["heldout"]}


@pytest.mark.skipif(shutil.which("diatheke") is None, reason="diatheke is not installed")
def test_bible_chapters():
    chapters = text.bible_chapters("Ruth")
    assert len(chapters) == 4 and chapters[0].startswith("In the days when the judges judged")
    assert "[" not in "".join(chapters) and ")" not in chapters[-1][-3:]


def test_text_is_frozen_once_written(tmp_path):
    text.write_text(tmp_path, {"train": ["One two three four."], "heldout": ["Five six seven."]})
    assert text.load_or_build_text(tmp_path) == {"train": ["One two three four."], "heldout": ["Five six seven."]}
