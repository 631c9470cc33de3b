"""Readers for corpora in their own layouts, so training can point at a user's data.

    utterances = read_corpus("path/to/LibriSpeech")       # or a Speech Commands folder, or a manifest
    python -m streamssm.data manifest path/to/corpus --out corpus.jsonl

- LibriSpeech: any folder tree holding SPEAKER-CHAPTER.trans.txt files, one "UTTERANCE-ID TEXT" per
  line, next to UTTERANCE-ID.flac (or .wav). Text is lower-cased, the speaker is the ID's first
  part, and the split is the subset folder (e.g. train-clean-100) when the tree has one.
- Speech Commands: one folder per word holding its clips (SPEAKER_nohash_N.wav); folders starting
  with "_" (background noise) are skipped; validation_list.txt / testing_list.txt, when present,
  put clips in the "validation" / "test" split, the rest is "train".
- Manifests (manifest.py).
Durations come from the audio headers. A missing or unreadable audio file or a malformed line
raises `ManifestError` naming it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile
from tqdm import tqdm

from .manifest import ManifestError, Utterance, read_manifest, write_manifest

AUDIO_SUFFIXES = (".flac", ".wav")


def audio_duration(path: Path, where: str) -> float:
    if not path.is_file():
        raise ManifestError(f"{where}: audio file not found: {path}")
    try:
        return soundfile.info(str(path)).duration
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise ManifestError(f"{where}: unreadable audio {path} ({error})") from None


def read_librispeech(root: str | Path) -> list[Utterance]:
    root = Path(root)
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise ManifestError(f"{root}: no LibriSpeech *.trans.txt files found")
    utterances = []
    for transcript in tqdm(transcripts, desc="LibriSpeech chapters", unit="chapter", disable=len(transcripts) < 100):
        parts = transcript.relative_to(root).parts
        split = parts[-4] if len(parts) >= 4 else None
        for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{transcript}:{number}"
            fields = line.split(maxsplit=1)
            if len(fields) != 2 or "-" not in fields[0]:
                raise ManifestError(f"{where}: expected 'SPEAKER-CHAPTER-UTTERANCE TRANSCRIPT', got {line[:80]!r}")
            name, text = fields
            candidates = [transcript.parent / (name + suffix) for suffix in AUDIO_SUFFIXES]
            audio = next((p for p in candidates if p.is_file()), candidates[0])
            utterances.append(
                Utterance(
                    audio.resolve(),
                    text=text.strip().lower(),
                    duration=audio_duration(audio, where),
                    speaker=name.split("-")[0],
                    split=split,
                )
            )
    return utterances


def read_speech_commands(root: str | Path) -> list[Utterance]:
    root = Path(root)
    splits = {}
    for list_name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        if (root / list_name).exists():
            splits.update((line.strip(), split) for line in (root / list_name).read_text().splitlines() if line.strip())
    clips = sorted(
        p
        for folder in root.iterdir()
        if folder.is_dir() and not folder.name.startswith(("_", "."))
        for p in folder.iterdir()
        if p.suffix in AUDIO_SUFFIXES
    )
    if not clips:
        raise ManifestError(f"{root}: no word folders with .wav/.flac clips found (Speech Commands layout)")
    utterances = []
    for clip in tqdm(clips, desc="Speech Commands clips", unit="clip", disable=len(clips) < 1000):
        word, key = clip.parent.name, clip.relative_to(root).as_posix()
        speaker = clip.stem.split("_nohash_")[0] if "_nohash_" in clip.stem else None
        utterances.append(
            Utterance(
                clip.resolve(),
                text=word.replace("_", " "),
                keyword=word.replace("_", " "),
                duration=audio_duration(clip, str(clip)),
                speaker=speaker,
                split=splits.get(key, "train") if splits else None,
            )
        )
    return utterances


def read_corpus(path: str | Path) -> list[Utterance]:
    """A manifest file, a LibriSpeech tree or a Speech Commands folder, recognised by its layout."""
    path = Path(path)
    if path.is_file():
        return read_manifest(path)
    if not path.is_dir():
        raise ManifestError(f"corpus not found: {path}")
    if next(path.rglob("*.trans.txt"), None) is not None:
        return read_librispeech(path)
    return read_speech_commands(path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data manifest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("corpus", help="a LibriSpeech tree, a Speech Commands folder or a manifest")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (audio paths relative to it)")
    args = parser.parse_args(argv)
    utterances = read_corpus(args.corpus)
    write_manifest(args.out, utterances)
    hours = sum(u.duration for u in utterances) / 3600
    print(f"{len(utterances)} utterances, {hours:.2f} hours -> {args.out}")


if __name__ == "__main__":
    main()
