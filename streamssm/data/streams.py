"""Long negative streams for measuring keyword false alarms per hour: sentences without any keyword,
read by many voices one after another with natural pauses, over a bed of real background noise.

    python -m streamssm.data negatives --out data/negative_streams --hours 2

Files are FILE_MINUTES long (default 10), written as OUT/SPLIT/NNNN.flac with the transcript in
NNNN.txt, and listed in OUT/SPLIT/manifest.jsonl. By default the held-out voices read the
held-out text (voices.py, text.py), so no model trained on the training side has heard them;
`--split train` gives training-side streams (e.g. for threshold calibration). Pauses between
sentences are 0.2-2.5 s (log-uniform), with a 10 % chance of 3-15 s of quiet; each sentence has its
own level (0 to -10 dB); one noise recording, looped, runs under each file at 10-30 dB below the
speech. A re-run skips finished files.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from .augment import Augmenter, mix_at_snr
from .engines import SR
from .manifest import Utterance, write_manifest
from .sentences import check_engines, speak
from ..text import normalize_text, words_of
from .text import load_or_build_text
from .voices import PERSONAS_PER_VOICE, sentence_voices

SNR_DB = (10.0, 30.0)


def keyword_free(texts: list[str], keywords) -> list[str]:
    """The sentences that do not say any of the keywords (as whole words)."""
    keyword_words = [words_of(k) for k in keywords]
    return [t for t in texts if not any(k in words_of(t) for k in keyword_words)]


def pause(rng: np.random.Generator) -> np.ndarray:
    seconds = rng.uniform(3.0, 15.0) if rng.random() < 0.1 else float(np.exp(rng.uniform(np.log(0.2), np.log(2.5))))
    return np.zeros(int(seconds * SR), np.float32)


def make_stream(job: dict) -> Utterance:
    """Build, noise and write one stream file (or read back the finished one)."""
    path, text_path = Path(job["path"]), Path(job["path"]).with_suffix(".txt")
    if not path.exists():
        rng = np.random.default_rng(job["seed"])
        length, filled, pieces, said, failures = int(job["minutes"] * 60 * SR), 0, [], [], 0
        while filled < length:
            engine, voice = job["voices"][rng.integers(len(job["voices"]))]
            text = job["texts"][rng.integers(len(job["texts"]))]
            try:
                audio, _ = speak(engine, voice, int(rng.integers(PERSONAS_PER_VOICE)), text)
            except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
                failures += 1
                if failures > 100:
                    raise RuntimeError(f"{path}: the voices keep failing, last: {error}") from error
                continue
            pieces += [audio * 10 ** (rng.uniform(-10, 0) / 20), pause(rng)]
            filled += len(pieces[-2]) + len(pieces[-1])
            said.append(normalize_text(text))
        speech = np.concatenate(pieces)[:length]
        noise = Augmenter(noise_dir=job["noise_dir"], seed=job["seed"]).noise_segment(length)
        mixed = np.clip(mix_at_snr(speech, noise, rng.uniform(*SNR_DB)), -1, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        text_path.write_text(" ".join(said) + "\n", encoding="utf-8")
        temporary = path.with_suffix(".tmp.flac")
        soundfile.write(temporary, mixed, SR)
        temporary.replace(path)
    return Utterance(
        path,
        text=text_path.read_text(encoding="utf-8").strip(),
        duration=soundfile.info(path).duration,
        speaker="mixed",
        sample_rate=SR,
        split=job["split"],
    )


def generate(
    out, hours: float, keywords, split="heldout", file_minutes=10.0, noise_dir=None, workers=None, seed=0
) -> list[Utterance]:
    out = Path(out)
    if noise_dir is None:
        from .splits import shared_data_dir

        noise_dir = shared_data_dir() / "noise"
    voices = sentence_voices(split)
    check_engines(voices)
    texts = keyword_free(load_or_build_text(out / "text")[split], keywords)
    if not texts:
        raise ValueError(f"no {split} sentences without the keywords {keywords}")
    count = max(1, round(hours * 60 / file_minutes))
    jobs = [
        dict(
            path=str(out / split / f"{i:04d}.flac"),
            minutes=file_minutes,
            voices=voices,
            texts=texts,
            noise_dir=str(noise_dir),
            split=split,
            seed=zlib.crc32(f"{seed}:{split}:stream:{i}".encode()),
        )
        for i in range(count)
    ]
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        utterances = list(
            tqdm(pool.map(make_stream, jobs), total=count, desc=f"negative streams ({split})", unit="file")
        )
    write_manifest(out / split / "manifest.jsonl", utterances)
    return utterances


def main(argv=None):
    from .keyword_clips import DEFAULT_KEYWORDS

    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data negatives",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("data/negative_streams"), help="output folder")
    parser.add_argument("--hours", type=float, default=2.0, help="total length")
    parser.add_argument(
        "--keywords",
        nargs="+",
        default=DEFAULT_KEYWORDS,
        help="words no sentence may contain (default: the kws model's keywords)",
    )
    parser.add_argument("--split", choices=["heldout", "train"], default="heldout", help="voices and text to use")
    parser.add_argument("--file-minutes", type=float, default=10.0, help="length of each file")
    parser.add_argument("--noise-dir", type=Path, help="background noise recordings (default: ../shared/data/noise)")
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    utterances = generate(
        args.out, args.hours, args.keywords, args.split, args.file_minutes, args.noise_dir, args.workers, args.seed
    )
    hours = sum(u.duration for u in utterances) / 3600
    print(f"{len(utterances)} files, {hours:.2f} hours -> {args.out / args.split / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
