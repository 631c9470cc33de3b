"""Keyword and non-keyword clips from offline TTS voices, for KWS training of any keyword list.

    python -m streamssm.data keywords --out data/kws_tts --clips-per-keyword 400

Voices are (engine, voice) pairs; each clip gets a persona (speaking rate, pitch, and a
vocal-tract/speed shift done by resampling). The split is by whole voice and whole engine:
espeak-ng's gmw/en-GB-x-gbcwmd dialect and the two neural engines (piper "joe", hibari "heart")
are held out; everything else trains (voices.py holds the pools and documents the split). Clips
are trimmed at -50 dB below their peak (safe for the quiet tails of "up" and "off"), written as
16 kHz FLAC with a manifest per split. Re-running skips clips already written; work is spread over
all cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from ..audio import loud_span
from .augment import change_speed
from .engines import SR, synthesize
from .text import fortune_entries, split_sentences
from .voices import KEYWORD_HELDOUT_VOICES as HELDOUT_VOICES
from .voices import KEYWORD_TRAIN_VOICES as TRAIN_VOICES
from .voices import draw_persona

# the kws model's keywords, by group: what clips are made for by default, and what KWS training learns
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
WAKE_WORDS = [
    "computer",
    "hey computer",
    "alexa",
    "jarvis",
    "amelia",
    "athena",
    "smart mirror",
    "snowboy",
    "view glass",
    "hey chatterbox",
]
DEFAULT_KEYWORDS = DIGITS + COMMANDS + WAKE_WORDS
KEYWORD_GROUPS = ("wake words", "commands", "digits")  # false-alarm targets and reports are per group


def keyword_group(keyword: str) -> str:
    """ "digits", "commands", or "wake words" for any other keyword (a user's own included)."""
    return "digits" if keyword in DIGITS else "commands" if keyword in COMMANDS else "wake words"


CONFUSABLE_NEGATIVES = [
    "computers",
    "compute",
    "commuter",
    "alex",
    "alexander",
    "lexus",
    "hey",
    "hello",
    "athens",
    "amelie",
    "emilia",
    "jarvis cocker",
    "service",
    "stopwatch",
    "going",
    "goal",
    "yesterday",
    "nope",
    "know",
    "now",
    "update",
    "downtown",
    "leftover",
    "righteous",
    "online",
    "office",
    "often",
    "snowball",
    "cowboy",
    "mirror",
    "smart",
    "view",
    "glass",
    "chatter",
    "chatterbox",
    "box",
    "tree",
    "free",
    "sex",
    "seventy",
    "nineteen",
    "eighty",
    "fourteen",
    "fifty",
    "once",
    "twenty",
    "heaven",
    "hero",
    "zebra",
    "athlete",
]


def trim(audio: np.ndarray, floor_db: float = 50.0, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading/trailing audio more than `floor_db` below the loudest 10 ms frame."""
    start, end = loud_span(audio, floor_db, frame=SR // 100)
    margin = int(margin_s * SR)
    return audio[max(0, start - margin) : end + margin]


def make_clip(job: dict) -> dict | None:
    """Synthesize, perturb, trim and write one clip; None if the voice produced nothing usable."""
    path = Path(job["path"])
    if not path.exists():
        rate, pitch, tract = draw_persona(job["seed"])
        try:
            audio = synthesize(job["engine"], job["voice"], job["text"], rate, pitch)
        except (subprocess.CalledProcessError, ValueError, RuntimeError):
            return None
        audio = trim(change_speed(audio, tract))  # speed, pitch and formants move together: a new 'speaker'
        if len(audio) < 0.1 * SR or not np.isfinite(audio).all():
            return None
        audio = audio / max(1e-6, np.abs(audio).max()) * 0.9
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.flac")
        soundfile.write(tmp, audio, SR)
        tmp.replace(path)
    info = soundfile.info(path)
    return {
        "audio": path.name,
        "keyword": job["keyword"],
        "text": job["text"],
        "duration": round(info.duration, 3),
        "speaker": f"{job['engine']}:{job['voice']}",
        "sample_rate": SR,
        "split": job["split"],
    }


def negative_words(keywords, count: int, seed: int) -> list[str]:
    """Single words and 2-3 word phrases from WordNet lemmas plus confusable near-words, none a keyword."""
    words = set()
    for part in ("noun", "verb", "adj", "adv"):
        index = Path(f"/usr/share/wordnet/index.{part}")
        if index.exists():
            words.update(
                line.split()[0]
                for line in index.read_text(errors="ignore").splitlines()
                if line[:1].isalpha() and line.split()[0].isalpha()
            )
    if not words:
        raise FileNotFoundError("WordNet (Debian package wordnet-base) is needed for negative words")
    keyword_words = {w for k in keywords for w in k.split()}
    pool = sorted(w for w in words if w not in keyword_words and 2 < len(w) < 12)
    r = random.Random(seed)
    phrases = [w for w in CONFUSABLE_NEGATIVES if w not in keywords]
    while len(phrases) < count:
        phrases.append(" ".join(r.choice(pool) for _ in range(r.choice((1, 1, 2, 3)))))
    return phrases[:count]


def negative_sentences(keywords, count: int, seed: int) -> list[str]:
    """Sentences of 4-20 words from Debian's fortunes, with no digits and none of the keywords."""
    keyword_words = [f" {k} " for k in keywords]
    sentences = set()
    for entry in fortune_entries():
        for sentence in split_sentences(entry):
            words = re.findall(r"[a-z']+", sentence.lower())
            if (
                4 <= len(words) <= 20
                and not re.search(r"[0-9@#$%&*_/\\<>=|~^]", sentence)
                and not any(k in f" {' '.join(words)} " for k in keyword_words)
            ):
                sentences.add(sentence)
    if not sentences:
        raise FileNotFoundError("fortunes (Debian package fortunes) are needed for negative sentences")
    ordered = sorted(sentences)
    random.Random(seed).shuffle(ordered)
    return ordered[:count]


def plan(
    keywords,
    out: Path,
    clips_per_keyword: int,
    heldout_per_keyword: int,
    negatives: int,
    seed: int,
    heldout_sentences: int = 0,
    train_sentences: int = 0,
):
    jobs = []
    for split, voices, per_keyword in (
        ("train", TRAIN_VOICES, clips_per_keyword),
        ("heldout", HELDOUT_VOICES, heldout_per_keyword),
    ):
        for keyword in keywords:
            for i in range(per_keyword):
                engine, voice = voices[(i + zlib.crc32(keyword.encode())) % len(voices)]
                jobs.append(
                    dict(
                        engine=engine,
                        voice=voice,
                        text=keyword,
                        keyword=keyword,
                        split=split,
                        seed=zlib.crc32(f"{seed}:{split}:{keyword}:{i}".encode()),
                        path=str(out / split / keyword.replace(" ", "_") / f"{i:05d}.flac"),
                    )
                )
    for i, text in enumerate(negative_words(keywords, negatives, seed)):
        engine, voice = TRAIN_VOICES[i % len(TRAIN_VOICES)]
        jobs.append(
            dict(
                engine=engine,
                voice=voice,
                text=text,
                keyword=None,
                split="train",
                seed=zlib.crc32(f"{seed}:neg:{i}".encode()),
                path=str(out / "train" / "_negative" / f"{i:05d}.flac"),
            )
        )
    # held-out voices read the first sentences, training voices the next ones: no text is on both sides
    sentences = negative_sentences(keywords, heldout_sentences + train_sentences, seed)
    for split, voices, texts in (
        ("heldout", HELDOUT_VOICES, sentences[:heldout_sentences]),
        ("train", TRAIN_VOICES, sentences[heldout_sentences:]),
    ):
        for i, text in enumerate(texts):
            engine, voice = voices[i % len(voices)]
            jobs.append(
                dict(
                    engine=engine,
                    voice=voice,
                    text=text,
                    keyword=None,
                    split=split,
                    seed=zlib.crc32(f"{seed}:{split}:sentence:{i}".encode()),
                    path=str(out / split / "_sentences" / f"{i:05d}.flac"),
                )
            )
    return jobs


def generate(
    keywords,
    out,
    clips_per_keyword=400,
    heldout_per_keyword=60,
    negatives=12000,
    seed=0,
    workers=None,
    heldout_sentences=0,
    train_sentences=0,
):
    out = Path(out)
    jobs = plan(
        keywords, out, clips_per_keyword, heldout_per_keyword, negatives, seed, heldout_sentences, train_sentences
    )
    records = {"train": [], "heldout": []}
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        for job, record in tqdm(zip(jobs, pool.map(make_clip, jobs, chunksize=16)), total=len(jobs), desc="clips"):
            if record is not None:
                record["audio"] = str(Path(job["path"]).relative_to(out / job["split"]))
                records[job["split"]].append(record)
    for split, rows in records.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        tmp = out / split / "manifest.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(out / split / "manifest.jsonl")
    return {split: len(rows) for split, rows in records.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data keywords",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="data/kws_tts", help="output folder (train/ and heldout/ with manifests)")
    parser.add_argument(
        "--keywords", nargs="+", default=DEFAULT_KEYWORDS, help="keywords (default: the kws model's set)"
    )
    parser.add_argument("--clips-per-keyword", type=int, default=400, help="training clips per keyword")
    parser.add_argument("--heldout-per-keyword", type=int, default=60, help="held-out-voice clips per keyword")
    parser.add_argument("--negatives", type=int, default=12000, help="non-keyword clips (training voices)")
    parser.add_argument(
        "--heldout-sentences",
        type=int,
        default=0,
        help="non-keyword sentences from the held-out voices (false-alarm tests)",
    )
    parser.add_argument(
        "--train-sentences",
        type=int,
        default=0,
        help="non-keyword sentences from the training voices (connected-speech negatives)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    counts = generate(
        args.keywords,
        args.out,
        args.clips_per_keyword,
        args.heldout_per_keyword,
        args.negatives,
        args.seed,
        args.workers,
        args.heldout_sentences,
        args.train_sentences,
    )
    print(f"clips written: {counts}")


if __name__ == "__main__":
    main()
