"""The word search's weights (decoding/word_search.py), chosen on development speech, not on an eval set.

    python benchmarks/word_search_sweep.py          # writes word_search_sweep.md / .json

Development speech: 200 utterances of speechocean762's test speakers that are not among the 500 of
the "speechocean762" evaluation set (every 5th utterance; these are the ones after them, so speakers
are shared with the evaluation but utterances are not), and the first 100 of the ljs-reread train
part (the model trained on them, so its CTC head is surer there than on new speech). Each utterance
is encoded offline once (`decoding.speech.encode_offline`, the same frames as streaming) and its
CTC log-probabilities are searched as one utterance under each setting: first a grid of the LM
weight alpha, the word score beta and the out-of-lexicon score; then, at the best of those, the
bigram weight and the beam. WER after Whisper's English normaliser.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from machine import provenance, provenance_line, save  # benchmarks/machine.py
from tqdm import tqdm

from streamssm.audio import SAMPLE_RATE, read_audio
from streamssm.data.splits import real_split
from streamssm.decoding.ctc import CTCGreedySearch
from streamssm.decoding.speech import encode_offline
from streamssm.decoding.word_lm import english_lm
from streamssm.decoding.word_search import WordSearch, WordSearchConfig
from streamssm.eval.asr import error_rates, score
from streamssm.eval.sets import SPEECHOCEAN_EVERY
from streamssm.models import load_model
from streamssm.tokenizer import BLANK_ID

HERE = Path(__file__).resolve().parent
WEIGHTS = {"alpha": (0.15, 0.3, 0.5, 0.8), "beta": (0.5, 1.0, 1.5, 2.0, 2.5), "oov_score": (-10.0, -6.0, -3.0)}
AT_BEST = {"bigram_weight": (0.0, 0.5, 0.8, 0.9), "beam": (8, 16, 32)}


def grid(values: dict) -> list[dict]:
    return [dict(zip(values, combination)) for combination in itertools.product(*values.values())]


def development_sets() -> dict[str, list]:
    ocean = sorted(real_split("speechocean762")["eval"], key=lambda u: u.audio)
    return {
        "speechocean762-dev": ocean[1::SPEECHOCEAN_EVERY][:200],
        "ljs-reread-train": real_split("ljs-reread")["train"][:100],
    }


def greedy_tokens(logprobs) -> list[int]:
    """What the greedy CTC search spells (repeats collapsed, blanks dropped)."""
    best = logprobs.argmax(1)
    return [int(t) for i, t in enumerate(best) if t != BLANK_ID and (i == 0 or t != best[i - 1])]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/asr", help="model folder (default: models/asr)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for word_search_sweep.md/.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    model = load_model(args.model, "cpu").eval()
    ctc = CTCGreedySearch(model.ctc_head)
    sets = {}
    for name, utterances in development_sets().items():
        encoded = (encode_offline(model, read_audio(u.audio), SAMPLE_RATE) for u in utterances)
        sets[name] = [(u.text, ctc.prepare(e)[0].numpy()) for u, e in zip(tqdm(utterances, desc=name), encoded)]
    greedy = {
        name: error_rates([score(text, model.tokenizer.decode(greedy_tokens(lp))) for text, lp in pairs])["wer"]
        for name, pairs in sets.items()
    }
    lm = english_lm()

    def evaluate(setting: dict) -> dict:
        search = WordSearch(model.tokenizer, lm, WordSearchConfig(**setting))
        wer = {
            name: error_rates(
                [score(text, model.tokenizer.decode([token for token, _, _ in search.whole(lp)])) for text, lp in pairs]
            )["wer"]
            for name, pairs in sets.items()
        }
        return {**setting, "wer": wer, "mean_wer": sum(wer.values()) / len(wer)}

    weights = [evaluate(s) for s in tqdm(grid(WEIGHTS), desc="weights")]
    best = {k: v for k, v in min(weights, key=lambda r: r["mean_wer"]).items() if k in WEIGHTS}
    at_best = [evaluate({**best, **s}) for s in tqdm(grid(AT_BEST), desc="at the best weights")]
    report = {
        **provenance("word_search_sweep.py", argv),
        "model": args.model,
        "sets": {name: len(pairs) for name, pairs in sets.items()},
        "defaults": WordSearchConfig().to_dict(),
        "greedy": greedy,
        "weights": weights,
        "at_best_weights": at_best,
    }
    names = list(sets)
    lines = [
        "# Word search weights on development speech",
        "",
        provenance_line(report),
        f"Model: {args.model}, CTC head, whole utterances; "
        + ", ".join(f"{name} {n} utterances" for name, n in report["sets"].items())
        + " (benchmarks/word_search_sweep.py says which). WER after Whisper's English normaliser. "
        + "Greedy CTC (no lexicon): "
        + ", ".join(f"{name} {100 * greedy[name]:.1f} %" for name in names)
        + f", mean {100 * sum(greedy.values()) / len(greedy):.1f} %.",
    ]
    for title, rows, varied in (
        (
            f"Weights (beam {WordSearchConfig().beam}, bigram_weight {WordSearchConfig().bigram_weight})",
            weights,
            WEIGHTS,
        ),
        (
            "Bigram weight and beam at the best weights (" + ", ".join(f"{k} {v}" for k, v in best.items()) + ")",
            at_best,
            AT_BEST,
        ),
    ):
        lines += ["", f"## {title}", "", "| " + " | ".join([*varied, *names, "mean"]) + " |"]
        lines.append("|" + "---|" * (len(varied) + len(names) + 1))
        for r in sorted(rows, key=lambda r: r["mean_wer"]):
            cells = [*(str(r[k]) for k in varied), *(f"{100 * r['wer'][n]:.1f} %" for n in names)]
            lines.append("| " + " | ".join(cells) + f" | {100 * r['mean_wer']:.1f} % |")
    save(args.out, "word_search_sweep", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
