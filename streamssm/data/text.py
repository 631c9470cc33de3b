"""Offline English sentences for TTS corpora, from Debian text packages.

    python -m streamssm.data text --out data/text      # writes train.txt and heldout.txt

Sources: the World English Bible (`sword-text-web`, read with `diatheke`), the quoted example
phrases of WordNet (`wordnet-base`) and `fortunes`. Each sentence is cleaned (quotes, dashes and
brackets dropped, hyphens made spaces, numbers spelled out), kept only if it is 3-25 plain English
words that every engine reads the same way (no digits left, symbols, acronyms or abbreviations),
and deduplicated by its transcript. The held-out text is the sentences whose transcript hashes to crc32 % 20 == 0
(about 5 %); a transcript is on one side only, so train and held-out text never overlap.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import zlib
from pathlib import Path

from ..text import normalize_text, words_of

HELDOUT_BUCKETS = 20  # crc32(transcript) % 20 == 0 is held out
MIN_WORDS, MAX_WORDS = 3, 25
FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_ORDINAL_ENDINGS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?(%?)(?!\w|,\d)")
_ALLOWED = re.compile(r"[A-Za-z ,.;:!?']+")
# acronyms, abbreviations and initials: engines disagree on how to read them
_UNREADABLE = re.compile(r"\b[A-Z]{2,}\b|\b[A-Z]\.|\.\w|[,;:]{2}|\b(?:Mrs?|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Inc|Ltd|Co)\.")
_REPLACEMENTS = {
    "\u2019": "'",
    "\u2018": "'",
    "`": "'",
    "\u201c": "",
    "\u201d": "",
    '"': "",
    "\u2014": ", ",
    "\u2013": ", ",
    "--": ", ",
    "-": " ",
    "&": " and ",
    "(": "",
    ")": "",
    "\u2026": ".",
    "_": " ",
}


def number_to_words(n: int) -> str:
    """0 <= n < 10**15 as English words: 1204 -> 'one thousand two hundred four'."""
    if not 0 <= n < 10**15:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return f"{number_to_words(n // scale)} {name}" + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError(n)


def ordinal_words(n: int) -> str:
    """3 -> 'third', 21 -> 'twenty first', 100 -> 'one hundredth'."""
    *head, last = number_to_words(n).split()
    if last in _ORDINAL_ENDINGS:
        last = _ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def spell_numbers(text: str) -> str:
    """Digits to words: '3.5%' -> 'three point five percent', '1,000' -> 'one thousand', '2nd' -> 'second',
    1100-1999 like years: '1984' -> 'nineteen eighty four', '1905' -> 'nineteen oh five'."""

    def spell(match: re.Match) -> str:
        whole, fraction, ordinal, percent = match.groups()
        n = int(whole.replace(",", ""))
        if n >= 10**15:
            return match.group(0)
        if ordinal:
            words = ordinal_words(n)
        elif 1100 <= n < 2000 and "," not in whole and not fraction and not percent:  # read like a year
            words = (
                f"{number_to_words(n // 100)} {number_to_words(n % 100) if n % 100 >= 10 else 'oh ' + _ONES[n % 100]}"
            )
            words = words.replace(" oh zero", " hundred")
        else:
            words = number_to_words(n)
        if fraction:
            words += " point " + " ".join(_ONES[int(d)] for d in fraction)
        return words + (" percent" if percent else "")

    return _NUMBER.sub(spell, text)


def spoken_words(text: str) -> str:
    """`words_of` the text with its numbers read out, both as numbers and digit by digit ("press
    911": "press nine hundred eleven nine one one"), however a speaker may have read them."""
    digits = " ".join(number_to_words(int(d)) for d in re.findall(r"[0-9]", text))
    return words_of(f"{spell_numbers(text)} {digits}")


def split_sentences(text: str) -> list[str]:
    """Whitespace collapsed, split after '.', '!' or '?'."""
    return re.split(r"(?<=[.!?])\s+", " ".join(text.split()))


def clean_sentence(sentence: str) -> str | None:
    """The sentence as TTS input (numbers spelled, only plain punctuation), or None if unusable."""
    for old, new in _REPLACEMENTS.items():
        sentence = sentence.replace(old, new)
    if re.search(r"\d[:/]\d", sentence):  # times, references, dates: read differently by each engine
        return None
    sentence = " ".join(spell_numbers(sentence).split()).strip(" ,;:-'")
    sentence = re.sub(r"\s+([,.;:!?])", r"\1", sentence)
    if not sentence or not _ALLOWED.fullmatch(sentence) or _UNREADABLE.search(sentence):
        return None
    return sentence if MIN_WORDS <= len(normalize_text(sentence).split()) <= MAX_WORDS else None


def bible_module() -> str:
    """The installed SWORD module of the World English Bible (e.g. engWEB2015eb)."""
    try:
        listing = subprocess.run(
            ["diatheke", "-b", "system", "-k", "modulelist"], capture_output=True, text=True, check=True
        ).stdout
    except FileNotFoundError:
        raise FileNotFoundError("diatheke is not installed (Debian packages diatheke, sword-text-web)") from None
    for line in listing.splitlines():
        if "World English Bible" in line:
            return line.split(" : ")[0].strip()
    raise FileNotFoundError("the World English Bible SWORD module is not installed (Debian package sword-text-web)")


def bible_chapters(books: str = "Gen-Rev") -> list[str]:
    """The text of each chapter of `books` (a diatheke key), footnotes removed."""
    module = bible_module()
    output = subprocess.run(
        ["diatheke", "-b", module, "-f", "plain", "-o", "f", "-k", books], capture_output=True, text=True, check=True
    ).stdout
    chapters, current, lines = [], None, []
    for line in output.splitlines():
        if line.strip() == f"({module})":  # diatheke's closing line
            continue
        verse = re.match(r"(.+ \d+):\d+: ?(.*)", line)
        if verse and verse.group(1) != current:
            chapters.append(" ".join(lines))
            current, lines = verse.group(1), []
        lines.append(verse.group(2) if verse else line)
    chapters.append(" ".join(lines))
    return [re.sub(r"\[[^\]]*\]", " ", chapter) for chapter in chapters if chapter.strip()]


def wordnet_examples() -> list[str]:
    """The quoted example phrases of WordNet's glosses."""
    files = [WORDNET_DIR / f"data.{part}" for part in ("noun", "verb", "adj", "adv")]
    if not any(path.exists() for path in files):
        raise FileNotFoundError(f"WordNet data not found in {WORDNET_DIR} (Debian package wordnet-base)")
    examples = []
    for path in filter(Path.exists, files):
        for line in path.read_text(errors="ignore").splitlines():
            if " | " in line and not line.startswith(" "):
                examples += re.findall(r'"([^"]+)"', line.split(" | ", 1)[1])
    return examples


def fortune_entries() -> list[str]:
    """Every fortune cookie of the installed collections (files without a suffix), in path order."""
    return [
        entry
        for path in sorted(FORTUNES_DIR.glob("*"))
        if not path.suffix and path.is_file()
        for entry in path.read_text(errors="ignore").split("\n%\n")
    ]


def source_sentences() -> dict[str, list[str]]:
    """Raw sentences by source; a missing source raises FileNotFoundError naming its package."""
    fortunes = fortune_entries()
    if not fortunes:
        raise FileNotFoundError(f"no fortunes in {FORTUNES_DIR} (Debian package fortunes)")
    return {
        "bible": [s for chapter in bible_chapters() for s in split_sentences(chapter)],
        "wordnet": wordnet_examples(),
        "fortunes": [s for entry in fortunes for s in split_sentences(entry)],
    }


def is_heldout(sentence: str) -> bool:
    """Whether a sentence belongs to the held-out text (decided by its transcript alone)."""
    return zlib.crc32(normalize_text(sentence).encode()) % HELDOUT_BUCKETS == 0


def split_text(sentences) -> dict[str, list[str]]:
    """Clean, deduplicate by transcript (first spelling kept), then split by transcript hash."""
    seen, parts = set(), {"train": [], "heldout": []}
    for raw in sentences:
        sentence = clean_sentence(raw)
        key = sentence and normalize_text(sentence)
        if key and key not in seen:
            seen.add(key)
            parts["heldout" if is_heldout(sentence) else "train"].append(sentence)
    return parts


def build_text() -> dict[str, list[str]]:
    """{"train": [...], "heldout": [...]} from all sources, in a fixed order."""
    return split_text(s for sentences in source_sentences().values() for s in sentences)


def write_text(out: Path, parts: dict[str, list[str]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, sentences in parts.items():
        temporary = out / f"{split}.txt.tmp"
        temporary.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
        temporary.replace(out / f"{split}.txt")


def read_text(folder: Path) -> dict[str, list[str]]:
    return {split: (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines() for split in ("train", "heldout")}


def load_or_build_text(folder: Path) -> dict[str, list[str]]:
    """The text frozen in `folder` (train.txt, heldout.txt), built and written there on first use, so
    that a resumed synthesis reads the same sentences even if the Debian packages change."""
    if not all((folder / f"{split}.txt").exists() for split in ("train", "heldout")):
        write_text(folder, build_text())
    return read_text(folder)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data text", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/text"), help="folder for train.txt and heldout.txt")
    args = parser.parse_args(argv)
    raw = source_sentences()
    parts = split_text(s for sentences in raw.values() for s in sentences)
    write_text(args.out, parts)
    for name, sentences in raw.items():
        print(f"{name}: {len(sentences)} raw sentences, {len(split_text(sentences)['train'])} clean train")
    words = sum(len(s.split()) for s in parts["train"])
    print(
        f"wrote {args.out}/train.txt ({len(parts['train'])} sentences, {words} words) and "
        f"{args.out}/heldout.txt ({len(parts['heldout'])} sentences)"
    )


if __name__ == "__main__":
    main()
