"""A training pack: the training audio re-encoded small (Ogg Opus), to travel to another machine.

    python -m streamssm.data pack speechocean762 ljs-reread vctk-p239 commonvoice-extra \\
        models/asr/training/labels/librispeech-tc100.jsonl --noise ../shared/data/noise --out .gpu/pack

SOURCES are named real recording sets (only their train parts are packed: data/splits.py) or
manifests (pseudo-labels, TTS corpora; every line is packed). The pack holds `manifest.jsonl`
(text, speaker, duration, word times), `audio/NNNNNN.ogg` (16 kHz mono Opus at --kbps) and,
with --noise, `noise/*.ogg` for the augmenter. A remote run (scripts/gpu_train.sh) trains from it
exactly as from the originals. The total size is printed: the device machine takes 64 MiB in all,
repository included; --max-mib stops the pack below a size, with a share of every source.
"""

from __future__ import annotations

import argparse
from itertools import zip_longest
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from ..audio import SAMPLE_RATE, read_audio
from .augment import AUDIO_SUFFIXES
from .manifest import read_manifest, write_manifest
from .splits import FOLDERS, real_split

OPUS_KBPS_RANGE = (6.0, 256.0)  # libsndfile maps compression_level 0..1 onto this bitrate range, top down


def utterances_of(source: str, limit: int | None = None):
    """A named real set's train part, or every transcribed line of a manifest (the first `limit`)."""
    utterances = real_split(source)["train"] if source in FOLDERS else read_manifest(source)
    return utterances[:limit]


def opus_level(kbps: float) -> float:
    """libsndfile's compression_level for an Opus bitrate in kbit/s."""
    low, high = OPUS_KBPS_RANGE
    if not low <= kbps <= high:
        raise ValueError(f"--kbps must be within {low:g}..{high:g}, got {kbps:g}")
    return (high - kbps) / (high - low)


def write_opus(path: Path, audio, kbps: float) -> None:
    sf.write(path, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=opus_level(kbps))


def interleaved(groups: list[list]) -> list:
    """The items of `groups` taken in turn (a1, b1, a2, b2, ...), so that any prefix samples every group."""
    return [item for row in zip_longest(*groups) for item in row if item is not None]


def pack(
    sources: list[str],
    out: Path,
    kbps: float,
    noise_dir: Path | None = None,
    limit: int | None = None,
    max_bytes: int | None = None,
) -> dict:
    """Write the pack into `out` (made fresh: an existing non-empty folder is refused); returns counts.

    The noise goes in first; then the sources' utterances in turn, so that with `max_bytes` the
    pack stops (below it) with a share of every source."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; delete it or pick another --out")
    utterances = interleaved([utterances_of(source, limit) for source in sources])
    if not utterances:
        raise ValueError(f"nothing to pack in {sources}")
    noise_files = sorted(p for p in noise_dir.rglob("*") if p.suffix in AUDIO_SUFFIXES) if noise_dir else []
    if noise_files:
        (out / "noise").mkdir(parents=True)
    size = 0
    for index, path in enumerate(noise_files):
        packed_noise = out / "noise" / f"{index:03d}.ogg"
        write_opus(packed_noise, read_audio(path), kbps)
        size += packed_noise.stat().st_size
    if max_bytes is not None and size >= max_bytes:
        raise ValueError(f"the noise alone takes {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB allowed")
    (out / "audio").mkdir(parents=True, exist_ok=True)
    seconds, packed = 0.0, []
    for index, utterance in enumerate(tqdm(utterances, desc="packing", unit="clip")):
        audio = read_audio(utterance.audio)
        path = out / "audio" / f"{index:06d}.ogg"
        write_opus(path, audio, kbps)
        if max_bytes is not None and size + path.stat().st_size > max_bytes:
            path.unlink()
            break
        size += path.stat().st_size
        utterance.audio = path
        utterance.duration, utterance.sample_rate = len(audio) / SAMPLE_RATE, SAMPLE_RATE
        seconds += utterance.duration
        packed.append(utterance)
    write_manifest(out / "manifest.jsonl", packed)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"utterances": len(packed), "hours": seconds / 3600, "noise_files": len(noise_files), "bytes": size}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data pack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sources", nargs="+", help=f"named real sets ({', '.join(sorted(FOLDERS))}) or manifests")
    parser.add_argument("--out", type=Path, required=True, help="the pack folder to make")
    parser.add_argument("--kbps", type=float, default=14.0, help="Opus bitrate in kbit/s (default 14: wideband speech)")
    parser.add_argument("--noise", type=Path, help="a folder of background-noise recordings to pack as well")
    parser.add_argument("--limit", type=int, help="pack at most this many utterances of each source (a dry run)")
    parser.add_argument(
        "--max-mib", type=float, help="stop below this size, with a share of every source (they are packed in turn)"
    )
    args = parser.parse_args(argv)
    try:
        max_bytes = None if args.max_mib is None else int(args.max_mib * 2**20)
        counts = pack(args.sources, args.out, args.kbps, args.noise, args.limit, max_bytes)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(
        f"{counts['utterances']} utterances ({counts['hours']:.2f} h) and {counts['noise_files']} noise files, "
        f"{counts['bytes'] / 2**20:.1f} MiB -> {args.out}"
    )


if __name__ == "__main__":
    main()
