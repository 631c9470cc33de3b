"""Does the speech recogniser still transcribe well after minutes of audio? WER by what came before.

    python benchmarks/asr_context.py --models models/asr           # writes asr_context.md / .json
    python benchmarks/asr_context.py --models data/models/a --backend torch --out data/eval/asr_context

`eval asr` starts every utterance from a fresh stream; a live stream (`mic`, the servers) carries
the encoder's state from one utterance to the next for as long as it runs. Here every Nth
utterance of a held-out set is streamed in 160 ms chunks after each context below, followed by the
evaluation's tail of silence (streamssm/eval/asr.py); the final results that end after the context
are its transcript, scored as `eval asr` scores it:

  fresh           nothing before it (as `eval asr`)
  silence 30 s    30 s of digital silence
  noise 30 s      30 s of real noise (../shared/data/noise) at -40 dBFS, under the utterance too
  speech N s      N s of other held-out read speech (vctk-p239's eval part), then 1.5 s of silence
  speech 30 s + noise   the same with the noise under all of it
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from machine import provenance, provenance_line, save, table  # benchmarks/machine.py

from streamssm.audio import SAMPLE_RATE as SR, read_audio
from streamssm.eval.asr import decode, error_rates, load_recognizer, load_sets, score, tail_seconds
from streamssm.eval.context import Contexts, silence

CHUNK_S = 0.16
PAUSE_S = 1.5  # between the context's talk and the utterance: the context's last result is final by then


def streams(contexts: Contexts, utterance: np.ndarray, tail: np.ndarray, i: int) -> dict[str, tuple[np.ndarray, float]]:
    """(stream audio, where the utterance starts in it) around the `i`th utterance, by context name."""
    talk = lambda seconds: np.concatenate([contexts.speech(seconds, i), silence(PAUSE_S)])
    before = {
        "fresh": np.zeros(0, np.float32),
        "silence 30 s": silence(30),
        "noise 30 s": silence(30),
        "speech 30 s": talk(30),
        "speech 120 s": talk(120),
        "speech 30 s + noise": talk(30),
    }
    out = {}
    for name, context in before.items():
        audio = np.concatenate([context, utterance, tail])
        out[name] = (contexts.with_noise(audio) if "noise" in name else audio, len(context) / SR)
    return out


def wer_by_context(model: str, backend: str | None, contexts: Contexts, utterances) -> dict[str, dict]:
    recognizer = load_recognizer(model, backend=backend)
    tail = silence(tail_seconds(recognizer))
    scores: dict[str, list[dict]] = {}
    for i, u in enumerate(tqdm(utterances, desc=model, unit="utterance")):
        for name, (audio, start) in streams(contexts, read_audio(u.audio), tail, i).items():
            finals = decode(recognizer, audio, SR, round(CHUNK_S * SR)).finals
            hypothesis = " ".join(e.text for e in finals if e.end > start)
            scores.setdefault(name, []).append(score(u.text, hypothesis))
    return {name: error_rates(rows) for name, rows in scores.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["models/asr"], help="model names or folders")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], help="default: from_pretrained's")
    parser.add_argument("--set", default="ljs-reread", help="the held-out set whose utterances are scored")
    parser.add_argument("--every", type=int, default=3, help="take every Nth utterance of the set")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "asr_context")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    name, utterances = next(iter(load_sets([args.set]).items()))
    utterances = [u for u in utterances if score(u.text, "")["reference_words"]][:: args.every]
    contexts = Contexts()
    results = {model: wer_by_context(model, args.backend, contexts, utterances) for model in args.models}
    names = list(next(iter(results.values())))
    report = {**provenance("asr_context.py", argv), "set": name, "utterances": len(utterances), "error_rates": results}
    rows = [[m, *(f"{r[n]['wer']:.1%}" for n in names)] for m, r in results.items()]
    page = [
        f"WER on {len(utterances)} {name} utterances (every {args.every}th) by what came before them in the stream.",
        provenance_line(report),
        "",
        table(["model", *names], rows),
    ]
    save(args.out.parent, args.out.name, report, "\n".join(page) + "\n")


if __name__ == "__main__":
    main()
