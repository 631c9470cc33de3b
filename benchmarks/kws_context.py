"""Does a keyword model still hear its wake words after minutes of audio? Recall by what came before.

    python benchmarks/kws_context.py --models models/kws            # writes kws_context.md / .json
    python benchmarks/kws_context.py --models data/models/a data/models/b --out data/eval/kws_context

A live stream has run for minutes or hours when the wake word comes; the evaluation's positives
(`eval kws`) start each clip from a fresh state after 0.5 s of silence. Here every 12th wake-word
clip of wwb's eval part is streamed after each context below (and followed by 0.5 s of silence, or
0.25 s and 3 s of speech), and counts if its keyword is reported anywhere in the stream; the
model's shipped thresholds, the PyTorch backend, one thread:

  fresh           0.5 s of silence (as `eval kws`)
  silence 30 s    30 s of digital silence
  noise 30 s      30 s of real noise (../shared/data/noise) at -40 dBFS, under the clip too
  speech N s      N s of held-out read speech (vctk-p239's eval part, 0.25 s pauses), 0.25 s before the clip
  speech 30 s + noise   the same with the noise under all of it
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from machine import provenance, provenance_line, save, table  # benchmarks/machine.py

from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split
from streamssm.eval.context import Contexts, silence
from streamssm.eval.kws import PAD, posteriors
from streamssm.recognizer import StreamingRecognizer


def streams(contexts: Contexts, clip: np.ndarray, i: int) -> dict[str, np.ndarray]:
    """The streams around the `i`th clip, by context name."""
    after = np.concatenate([silence(0.25), contexts.speech(3, i + 7)])
    talk = lambda seconds: np.concatenate([contexts.speech(seconds, i), clip, after])
    return {
        "fresh": np.concatenate([PAD, clip, PAD]),
        "silence 30 s": np.concatenate([silence(30), clip, PAD]),
        "noise 30 s": contexts.with_noise(np.concatenate([silence(30), clip, PAD])),
        "speech 10 s": talk(10),
        "speech 30 s": talk(30),
        "speech 120 s": talk(120),
        "speech 30 s + noise": contexts.with_noise(talk(30)),
    }


def recall_by_context(model: str, contexts: Contexts, clips) -> dict[str, float]:
    recognizer = StreamingRecognizer.from_pretrained(model, backend="torch")
    found: dict[str, int] = {}
    for i, u in enumerate(tqdm(clips, desc=model, unit="clip")):
        for name, audio in streams(contexts, read_audio(u.audio), i).items():
            events = recognizer.decoding.detect(posteriors(recognizer, audio), None)
            found[name] = found.get(name, 0) + any(e.text == u.keyword for e in events)
    return {name: count / len(clips) for name, count in found.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["models/kws"], help="model names or folders")
    parser.add_argument("--every", type=int, default=12, help="take every Nth wwb eval wake-word clip")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "kws_context")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    clips = [u for u in real_kws_split("wwb")["eval"] if u.keyword][:: args.every]
    contexts = Contexts()
    results = {model: recall_by_context(model, contexts, clips) for model in args.models}
    names = list(next(iter(results.values())))
    report = {**provenance("kws_context.py", argv), "clips": len(clips), "recall": results}
    rows = [[m, *(f"{r[n]:.0%}" for n in names)] for m, r in results.items()]
    page = [
        f"Recall of {len(clips)} wwb eval wake-word clips (every {args.every}th) by what came before them.",
        provenance_line(report),
        "",
        table(["model", *names], rows),
    ]
    save(args.out.parent, args.out.name, report, "\n".join(page) + "\n")


if __name__ == "__main__":
    main()
