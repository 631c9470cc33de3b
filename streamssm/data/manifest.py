"""Manifests: one JSON object per line describing one utterance.

Keys: `audio` (path relative to the manifest), `text` and/or `keyword`, `duration` (seconds),
`speaker`, and optionally `sample_rate`, `split` and `words` (a list of [word, start, end] in
seconds). Other keys are ignored, so manifests written by other tools read as well.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


class ManifestError(ValueError):
    """A manifest line that cannot be used; the message names the file and line."""


@dataclass
class Utterance:
    audio: Path
    text: str | None = None
    keyword: str | None = None
    duration: float = 0.0
    speaker: str | None = None
    sample_rate: int | None = None
    split: str | None = None
    words: list[tuple[str, float, float]] | None = None


_OPTIONAL_STR = ("text", "keyword", "speaker", "split")


def _parse_line(line: str, base: Path, where: str, check_files: bool, require_label: bool) -> Utterance:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if not isinstance(record.get("audio"), str):
        raise ManifestError(f"{where}: missing or non-string 'audio'")
    if require_label and record.get("text") is None and record.get("keyword") is None:
        raise ManifestError(f"{where}: needs 'text' or 'keyword'")
    for key in _OPTIONAL_STR:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ManifestError(f"{where}: '{key}' must be a string or null")
    duration = record.get("duration")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration < 0:
        raise ManifestError(f"{where}: 'duration' must be a non-negative number of seconds")
    sample_rate = record.get("sample_rate")
    if sample_rate is not None and (not isinstance(sample_rate, int) or sample_rate <= 0):
        raise ManifestError(f"{where}: 'sample_rate' must be a positive integer")
    words = record.get("words")
    try:
        words = None if words is None else [(str(w), float(s), float(e)) for w, s, e in words]
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: 'words' must be a list of [word, start, end]") from None
    audio = (base / record["audio"]).resolve()
    if check_files and not audio.is_file():
        raise ManifestError(f"{where}: audio file not found: {audio}")
    return Utterance(
        audio=audio,
        text=record.get("text"),
        keyword=record.get("keyword"),
        duration=float(duration),
        speaker=record.get("speaker"),
        sample_rate=sample_rate,
        split=record.get("split"),
        words=words,
    )


def read_manifest(path: str | Path, check_files: bool = True, require_label: bool = True) -> list[Utterance]:
    """Read a manifest; audio paths come back absolute. Raises `ManifestError` naming the line.
    With `require_label` off, clips with neither text nor keyword are read too (to be labelled)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    base = path.resolve().parent
    utterances = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                utterances.append(_parse_line(line, base, f"{path}:{number}", check_files, require_label))
    return utterances


def utterance_record(utterance: Utterance, base: Path) -> dict:
    """The JSON object for one utterance, its audio path relative to `base`; None values left out."""
    record = {
        "audio": Path(os.path.relpath(Path(utterance.audio).resolve(), base)).as_posix(),
        "text": utterance.text,
        "keyword": utterance.keyword,
        "duration": round(float(utterance.duration), 4),
        "speaker": utterance.speaker,
        "sample_rate": utterance.sample_rate,
        "split": utterance.split,
        "words": None if utterance.words is None else [[w, round(s, 3), round(e, 3)] for w, s, e in utterance.words],
    }
    return {key: value for key, value in record.items() if value is not None}


def write_manifest(path: str | Path, utterances) -> None:
    """Write utterances as JSON lines, audio paths relative to the manifest (atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        for utterance in utterances:
            out.write(json.dumps(utterance_record(utterance, base), ensure_ascii=False) + "\n")
    temporary.replace(path)
