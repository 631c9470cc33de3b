"""ASR sentence corpora from the offline TTS voices: train voices read train text, held-out voices
read held-out text (voices.py and text.py give the two splits).

    python -m streamssm.data sentences --out data/asr_tts --train-sentences 56000 --heldout-sentences 2400

Layout: OUT/text/{train,heldout}.txt (the text, frozen on the first run), and per split
OUT/SPLIT/manifest.jsonl with clips under OUT/SPLIT/clips/. Sentence i of a split is read by voice
i of the split's weighted voice list (round robin) with one of that voice's fixed personas; the
speaker is "engine:voice:persona". Manifests carry word times where the engine gives them
(espeak-ng, festival). Work is spread over processes; finished clips are logged in
OUT/SPLIT/manifest.partial.jsonl, and a re-run skips them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from .augment import change_speed
from .engines import SR, engine_missing, synthesize_with_words
from .manifest import Utterance, read_manifest, utterance_record, write_manifest
from ..text import normalize_text
from .text import load_or_build_text
from .voices import PERSONAS_PER_VOICE, draw_persona, persona_seed, sentence_voices

PEAK = 0.9
SPLITS = ("train", "heldout")


def speak(engine: str, voice: str, persona: int, text: str):
    """(16 kHz audio peaking at PEAK, word times or None) of one voice persona reading `text`."""
    rate, pitch, tract = draw_persona(persona_seed((engine, voice), persona))
    audio, words = synthesize_with_words(engine, voice, text, rate, pitch)
    audio = change_speed(audio, tract)
    if len(audio) < 0.1 * SR or not np.isfinite(audio).all() or not np.any(audio):
        raise RuntimeError(f"{engine}:{voice} produced no usable audio for {text!r}")
    if words is not None:
        words = [(w, round(s / tract, 3), round(e / tract, 3)) for w, s, e in words]
    return audio * (PEAK / np.abs(audio).max()), words


def check_engines(voices) -> None:
    """Raise FileNotFoundError naming every engine of `voices` that is not installed."""
    missing = sorted({reason for engine, _ in voices if (reason := engine_missing(engine))})
    if missing:
        raise FileNotFoundError("; ".join(missing) + " (scripts/install_tts.sh installs the engines)")


def plan(texts: list[str], voices, count: int, folder: Path, split: str, seed: int = 0) -> list[dict]:
    """`count` jobs: the texts shuffled by `seed` (cycled if fewer), voices round robin."""
    if not texts:
        raise ValueError(f"no {split} sentences to read")
    order = list(texts)
    random.Random(seed).shuffle(order)
    jobs = []
    for i in range(count):
        engine, voice = voices[i % len(voices)]
        persona = (i // len(voices)) % PERSONAS_PER_VOICE
        jobs.append(
            dict(
                engine=engine,
                voice=voice,
                persona=persona,
                text=order[i % len(order)],
                split=split,
                path=str(folder / "clips" / f"{i // 1000:03d}" / f"{i:06d}.flac"),
            )
        )
    return jobs


def make_sentence(job: dict) -> Utterance | None:
    """Synthesize and write one clip; None if the voice could not read the text."""
    try:
        audio, words = speak(job["engine"], job["voice"], job["persona"], job["text"])
    except (subprocess.CalledProcessError, ValueError, RuntimeError):
        return None
    path = Path(job["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.flac")
    soundfile.write(temporary, audio, SR)
    temporary.replace(path)
    return Utterance(
        path,
        text=normalize_text(job["text"]),
        duration=len(audio) / SR,
        sample_rate=SR,
        speaker=f"{job['engine']}:{job['voice']}:{job['persona']}",
        split=job["split"],
        words=words,
    )


def run_jobs(jobs: list[dict], folder: Path, workers: int | None) -> list[Utterance]:
    """Make the clips not logged as done in FOLDER/manifest.partial.jsonl, log each result,
    and write FOLDER/manifest.jsonl in job order. Returns the manifest's utterances."""
    log = folder / "manifest.partial.jsonl"
    done = {u.audio: u for u in read_manifest(log, check_files=False)} if log.exists() else {}
    todo = [job for job in jobs if Path(job["path"]).resolve() not in done or not Path(job["path"]).exists()]
    for job in todo:  # a logged clip whose file was lost is made again
        done.pop(Path(job["path"]).resolve(), None)
    folder.mkdir(parents=True, exist_ok=True)
    with (
        ProcessPoolExecutor(workers or os.cpu_count()) as pool,
        open(log, "a", encoding="utf-8") as out,
        tqdm(total=len(todo), desc=f"sentences ({folder.name})", unit="clip") as bar,
    ):
        seconds = 0.0
        for utterance in pool.map(make_sentence, todo, chunksize=4):
            if utterance is not None:
                done[utterance.audio.resolve()] = utterance
                out.write(_json_line(utterance, folder))
                out.flush()
                seconds += utterance.duration
            bar.update()
            bar.set_postfix(hours=f"{seconds / 3600:.2f}", refresh=False)
    utterances = [done[p] for p in (Path(job["path"]).resolve() for job in jobs) if p in done]
    write_manifest(folder / "manifest.jsonl", utterances)
    return utterances


def _json_line(utterance: Utterance, folder: Path) -> str:
    return json.dumps(utterance_record(utterance, folder.resolve()), ensure_ascii=False) + "\n"


def generate(out, train_sentences: int, heldout_sentences: int, workers=None, non_free=False, seed=0) -> dict:
    """Synthesize (or finish) both splits; returns {split: (clips, hours)}."""
    out = Path(out)
    texts = load_or_build_text(out / "text")
    summary = {}
    for split, count in zip(SPLITS, (train_sentences, heldout_sentences)):
        if count:
            folder = out / split
            voices = sentence_voices(split, non_free)
            check_engines(voices)
            jobs = plan(texts[split], voices, count, folder, split, seed)
            utterances = run_jobs(jobs, folder, workers)
            summary[split] = (len(utterances), round(sum(u.duration for u in utterances) / 3600, 3))
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m streamssm.data sentences",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("data/asr_tts"), help="output folder")
    parser.add_argument(
        "--train-sentences",
        type=int,
        default=56000,
        help="clips read by the training voices (3.3 s each on average: 56000 are about 52 hours)",
    )
    parser.add_argument(
        "--heldout-sentences",
        type=int,
        default=2400,
        help="clips read by the held-out voices (2400 are about 2.2 hours)",
    )
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument(
        "--non-free",
        action="store_true",
        help="add the MBROLA and pico voices (Debian contrib/non-free) to the training side",
    )
    parser.add_argument("--seed", type=int, default=0, help="order in which the text is read")
    args = parser.parse_args(argv)
    summary = generate(args.out, args.train_sentences, args.heldout_sentences, args.workers, args.non_free, args.seed)
    for split, (clips, hours) in summary.items():
        print(f"{split}: {clips} clips, {hours} hours -> {args.out / split / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
