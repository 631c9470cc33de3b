"""Named sets of real speech with reference texts, shared by the evaluations.

- "ljs-reread": the held-out part of the real read speech in ../shared/data/asr (see data.splits).
- "speechocean762": every 5th utterance (by path) of speechocean762's test part: 500 utterances of
  its 125 test speakers (non-native, many children), none of whom is in its train part.
- "speechocean762-test": all of speechocean762's test part (2,500 utterances, 2.7 h; a long set for
  keyword false alarms, not among the `eval asr` defaults).
- "commonvoice-extra": the held-out speakers of commonvoice-extra (crowd-sourced, many accents).
- "vctk-p239": the held-out clips of VCTK p239 (one speaker, whose other clips are train clips).
- "asterisk": Debian's asterisk-core-sounds-en(-wav) telephone prompts (one professional voice, 8 kHz).
- "librivox": the LibriVox utterances of Debian's pocketsphinx-testdata (one reader, Sense and Sensibility).
Any other name is taken as the path of a manifest.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from ..data.manifest import Utterance, read_manifest
from ..data.splits import real_split

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SPOKEN_KEYS = {"#": "pound", "*": "star"}  # telephone keys as the prompts' voice says them
SPHINX_TRANSCRIPT_LINE = re.compile(r"<s>(.*)</s>\s*\((\S+)\)")


def require(path: Path, package: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: install the Debian package {package}")


def asterisk_prompts(root=ASTERISK_SOUNDS, texts_file=ASTERISK_TEXTS) -> list[Utterance]:
    """Debian asterisk-core-sounds-en(-wav): real telephone prompts with their texts ("#" and "*"
    written as the words the voice says)."""
    require(Path(texts_file), "asterisk-core-sounds-en")
    require(Path(root), "asterisk-core-sounds-en-wav")
    texts = {}
    with gzip.open(texts_file, "rt", errors="ignore") as lines:
        for line in lines:
            if ":" in line and not line.startswith(";"):
                name, text = line.split(":", 1)
                texts[name.strip()] = re.sub(r"[#*]", lambda key: SPOKEN_KEYS[key[0]], text.strip())
    return [
        Utterance(Path(root, name + ".wav"), text=text)
        for name, text in texts.items()
        if Path(root, name + ".wav").is_file()
    ]


def librivox_utterances(root=LIBRIVOX) -> list[Utterance]:
    """Debian pocketsphinx-testdata's LibriVox utterances, with the references of its `transcription`
    file (CMU Sphinx lines "<s> text </s> (utterance id)", audio in "<id>.wav" beside it)."""
    transcription = Path(root, "transcription")
    require(transcription, "pocketsphinx-testdata")
    utterances = []
    for number, line in enumerate(transcription.read_text().splitlines(), 1):
        if not line.strip():
            continue
        match = SPHINX_TRANSCRIPT_LINE.fullmatch(line.strip())
        if not match:
            raise ValueError(f"{transcription}:{number}: expected '<s> text </s> (id)', got {line!r}")
        audio = Path(root, match[2] + ".wav")
        require(audio, "pocketsphinx-testdata")
        utterances.append(Utterance(audio, text=" ".join(match[1].split()), speaker="librivox"))
    return utterances


SPEECHOCEAN_EVERY = 5  # of its 2,500 test utterances, for evaluations that take minutes, not an hour

NAMED_SETS = {
    "ljs-reread": lambda: real_split("ljs-reread")["eval"],
    "speechocean762": lambda: sorted(real_split("speechocean762")["eval"], key=lambda u: u.audio)[::SPEECHOCEAN_EVERY],
    "commonvoice-extra": lambda: real_split("commonvoice-extra")["eval"],
    "vctk-p239": lambda: real_split("vctk-p239")["eval"],
    "asterisk": asterisk_prompts,
    "librivox": librivox_utterances,
}

LONG_SETS = {"speechocean762-test": lambda: real_split("speechocean762")["eval"]}


def speech_set(name: str) -> tuple[str, list[Utterance]]:
    """(set name, utterances) of a named set or of a manifest, named after its folder when the file
    is called manifest.jsonl, else after the file."""
    named = {**NAMED_SETS, **LONG_SETS}
    if name in named:
        return name, named[name]()
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{name!r} is neither a named set ({', '.join(NAMED_SETS)}) nor a manifest file")
    return (path.parent.name if path.name == "manifest.jsonl" else path.stem), read_manifest(path)
