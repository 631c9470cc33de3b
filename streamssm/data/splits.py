"""The fixed train/eval split of the real recordings in ../shared/data.

Rule (decided once, never tuned):
- kws/fsdd: by whole speaker: "lucas" is the eval part, george, jackson and nicolas train.
- asr/speechocean762: by its own speaker-disjoint `split` field: "train" trains, "test" is the eval part.
- asr/commonvoice-extra (many speakers): by whole speaker, crc32(speaker) % 10 < 7 trains.
- kws/wwb, kws/precise, asr/ljs-reread, asr/vctk-p239 (no usable speaker labels, or one speaker): by
  a stable hash of the clip's path inside its folder: crc32(path) % 10 < 7 trains, the rest (about
  30 %) is the eval part. precise's non-wake-word clips are split the same way.
Clips without a transcript or keyword (to be labelled by a teacher, see data/label.py) are in
neither part; trainers that use their teacher labels leave out those of an eval part's speakers
(`eval_speakers`: 15 of speechocean762's untranscribed speakers are test speakers).
Models trained here never see an eval part; model cards report on eval parts only.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from .manifest import Utterance, read_manifest

EVAL_SPEAKERS = {"fsdd": {"lucas"}}
SPLIT_FIELD = {"speechocean762": {"train": "train", "test": "eval"}}
SPEAKER_HASH = {"commonvoice-extra"}
HASH_TRAIN_BUCKETS = 7  # of 10
FOLDERS = {
    "wwb": "kws/wwb",
    "precise": "kws/precise",
    "fsdd": "kws/fsdd",
    "ljs-reread": "asr/ljs-reread",
    "speechocean762": "asr/speechocean762",
    "commonvoice-extra": "asr/commonvoice-extra",
    "vctk-p239": "asr/vctk-p239",
}


def shared_data_dir() -> Path:
    """$STREAMSSM_SHARED_DATA, else ../shared/data beside the source checkout."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    path = Path(os.environ.get("STREAMSSM_SHARED_DATA", default))
    if not path.is_dir():
        raise FileNotFoundError(f"real recordings not found at {path}; set STREAMSSM_SHARED_DATA")
    return path


def split_of(name: str, utterance: Utterance, folder: Path) -> str:
    if name in EVAL_SPEAKERS:
        return "eval" if utterance.speaker in EVAL_SPEAKERS[name] else "train"
    if name in SPLIT_FIELD:
        return SPLIT_FIELD[name][utterance.split]
    key = utterance.speaker if name in SPEAKER_HASH else utterance.audio.relative_to(folder).as_posix()
    return "train" if zlib.crc32(key.encode()) % 10 < HASH_TRAIN_BUCKETS else "eval"


def real_split(name: str) -> dict[str, list[Utterance]]:
    """{"train": [...], "eval": [...]} for one of the FOLDERS."""
    if name not in FOLDERS:
        raise ValueError(f"unknown recording set {name!r}; known: {sorted(FOLDERS)}")
    folder = shared_data_dir() / FOLDERS[name]
    parts = {"train": [], "eval": []}
    for utterance in read_manifest(folder / "manifest.jsonl", require_label=False):
        if utterance.text is None and utterance.keyword is None:
            continue
        parts[split_of(name, utterance, folder.resolve())].append(utterance)
    return parts


def real_kws_split(name: str) -> dict[str, list[Utterance]]:
    """The split of a real keyword set (wwb, precise, fsdd)."""
    if name not in ("wwb", "precise", "fsdd"):
        raise ValueError(f"{name!r} is not a keyword recording set (wwb, precise, fsdd)")
    return real_split(name)


def eval_speakers() -> set[str]:
    """The speakers of the eval parts that are split by speaker (fsdd, speechocean762,
    commonvoice-extra): other audio of theirs (an untranscribed clip labelled by a teacher) is
    held out too."""
    names = [*EVAL_SPEAKERS, *SPLIT_FIELD, *SPEAKER_HASH]
    return {u.speaker for name in names for u in real_split(name)["eval"] if u.speaker}
