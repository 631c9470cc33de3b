"""What a lexicon and a word language model could buy the asr model's CTC head: an offline probe.

    python3 -m venv data/probe-env && . data/probe-env/bin/activate
    bash scripts/install_torch.sh && pip install -e ".[eval]" pyctcdecode kenlm wordfreq
    python benchmarks/ctc_lm_probe.py                # writes ctc_lm_probe.md / .json

Its packages are not project dependencies and stay out of .venv: pyctcdecode pins numpy < 2, under
which the onnx extra's ml_dtypes fails to import.

Each utterance of the real sets runs through the model offline (whole utterance, as
decoding.speech.encode_offline does it); its CTC head's log-probabilities are searched three ways:
greedy (the package's CTCGreedySearch, what `--search ctc` does), a beam search without
a language model, and a beam search that only spells words of a lexicon scored by a unigram language
model (pyctcdecode's search, its default weights alpha 0.5 and beta 1.5, beam 32, fixed before the
run). Lexicon and unigram probabilities are wordfreq's 50,000 most frequent English words (no text
of any evaluation set); KenLM reads them from an ARPA file written here (it needs one bigram, which
the file gives to "<s> the"). The transducer, the model's default search, is in the asr card.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from machine import provenance, provenance_line, save  # benchmarks/machine.py
from tqdm import tqdm

from streamssm.audio import SAMPLE_RATE, read_audio
from streamssm.decoding.ctc import CTCGreedySearch
from streamssm.decoding.speech import encode_offline
from streamssm.eval.asr import error_rates, normalise, score
from streamssm.eval.sets import speech_set
from streamssm.models import load_model
from streamssm.tokenizer import BLANK_ID, Tokenizer

HERE = Path(__file__).resolve().parent
SETS = ("ljs-reread", "speechocean762", "commonvoice-extra", "vctk-p239", "asterisk", "librivox")
LEXICON_WORDS = 50_000
ALPHA, BETA, BEAM = 0.5, 1.5, 32


def write_unigram_arpa(words: list[str], path: Path) -> None:
    """An ARPA file of `words` with wordfreq's probabilities (log10) and one placeholder bigram."""
    from wordfreq import word_frequency

    lines = ["\\data\\", f"ngram 1={len(words) + 3}", "ngram 2=1", "", "\\1-grams:"]
    lines += ["-99\t<s>\t0", "-1.0\t</s>\t0", "-7.0\t<unk>\t0"]
    lines += [f"{math.log10(word_frequency(w, 'en')):.4f}\t{w}\t0" for w in words]
    lines += ["", "\\2-grams:", "-1.0\t<s> the", "", "\\end\\", ""]
    path.write_text("\n".join(lines))


def searches(model, workdir: Path) -> dict:
    """name -> function(encoded (1, T, d) or None) -> text."""
    from pyctcdecode import build_ctcdecoder
    from wordfreq import top_n_list

    tokenizer: Tokenizer = model.tokenizer
    pieces = [tokenizer.processor.id_to_piece(i) for i in range(tokenizer.vocab_size)]
    # the blank spells nothing; other special pieces get names no word contains
    labels = ["" if i == BLANK_ID else f"@{i}" if p.startswith("<") else p for i, p in enumerate(pieces)]
    words = [w for w in top_n_list("en", LEXICON_WORDS) if w.isalpha()]
    arpa = workdir / "unigram.arpa"
    write_unigram_arpa(words, arpa)
    plain = build_ctcdecoder(labels)
    lexicon = build_ctcdecoder(labels, kenlm_model_path=str(arpa), unigrams=words, alpha=ALPHA, beta=BETA)
    greedy = CTCGreedySearch(model.ctc_head)

    def beam(decoder):
        return lambda encoded: decoder.decode(greedy.prepare(encoded)[0].numpy(), beam_width=BEAM)

    return {
        "greedy": lambda encoded: tokenizer.decode([token for token, _, _ in greedy.run(encoded)[0][0]]),
        "beam": beam(plain),
        "beam + lexicon + unigram LM": beam(lexicon),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/asr", help="model folder (default: models/asr)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), help=f"sets (default: {' '.join(SETS)})")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for ctc_lm_probe.md/.json and the ARPA file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)  # inference only
    model = load_model(args.model, "cpu").eval()
    workdir = Path("data") / "ctc_lm_probe"
    workdir.mkdir(parents=True, exist_ok=True)
    search = searches(model, workdir)
    results = {}
    for name in args.sets:
        name, utterances = speech_set(name)
        utterances = [u for u in utterances if normalise(u.text or "").strip()]  # as eval asr skips them
        counts = {way: [] for way in search}
        for utterance in tqdm(utterances, desc=name):
            encoded = encode_offline(model, read_audio(utterance.audio), SAMPLE_RATE)
            for way, decode in search.items():
                counts[way].append(score(utterance.text, "" if encoded is None else decode(encoded)))
        results[name] = {"utterances": len(utterances), **{way: error_rates(c) for way, c in counts.items()}}
    report = {
        **provenance("ctc_lm_probe.py", argv),
        "model": args.model,
        "sets": results,
    }
    ways = list(search)
    lines = [
        "# CTC head with a lexicon and a unigram word LM (offline probe)",
        "",
        provenance_line(report),
        f"Model: {args.model}, whole utterances, its CTC head only. WER after Whisper's English normaliser.",
        f"Lexicon: wordfreq's {LEXICON_WORDS:,} most frequent English words; pyctcdecode, alpha {ALPHA}, beta "
        f"{BETA}, beam {BEAM} (benchmarks/ctc_lm_probe.py says why).",
        "",
        "| set | utterances | " + " | ".join(ways) + " |",
        "|---|---|" + "---|" * len(ways),
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['utterances']} | " + " | ".join(f"{100 * r[w]['wer']:.1f} %" for w in ways) + " |")
    save(args.out, "ctc_lm_probe", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
