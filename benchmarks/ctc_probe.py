"""How much an encoder's frames say about the text: a linear character CTC probe on frozen frames.

    python benchmarks/ctc_probe.py models/asr data/models/asr_transfer_align whisper-tiny.en

For each encoder (an ASR model folder, or a Whisper teacher name: its bidirectional encoder on the
clip's own frames) the frames of ljs-reread's train part (207 utterances, one reader, 24 min) are
computed once, a LayerNorm + Linear head over characters is trained on them with CTC (Adam, full
batch, --epochs), and its greedy CER and WER on the eval part (89 utterances) are printed as one
markdown row. The same probe, on frozen Moonshine or Whisper features, is the 33 % CER of
../shared/notes/teachers.md.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from streamssm.audio import read_audio
from streamssm.data.splits import real_split
from streamssm.eval.asr import error_rates, score
from streamssm.features import SUBSAMPLING, log_mel
from streamssm.text import normalize_text

CHARACTERS = " abcdefghijklmnopqrstuvwxyz'"  # id 0 is the blank, then these


def encoder_frames(name: str):
    """A function: audio -> frozen frames (T, d), for a model folder or a Whisper teacher name."""
    if name.startswith("whisper"):
        from streamssm.distill.transfer import WHISPER_FEATURES, WhisperEncoder, whisper_input, whisper_tensors

        teacher = WhisperEncoder(whisper_tensors(name))
        return lambda audio: teacher(whisper_input(log_mel(audio, WHISPER_FEATURES)[None]))[-1][0]
    from streamssm.models import load_model

    model = load_model(name)

    def frames(audio):
        features = log_mel(audio, model.config.features)
        features = F.pad(features, (0, 0, 0, -features.shape[0] % SUBSAMPLING))
        with torch.no_grad():
            return model.encoder(features[None])[0][0]

    return frames


def encode_text(text: str) -> torch.Tensor:
    return torch.tensor([CHARACTERS.index(c) + 1 for c in normalize_text(text) if c in CHARACTERS])


def greedy(logits: torch.Tensor) -> str:
    ids = logits.argmax(-1).tolist()
    kept = [i for k, i in enumerate(ids) if i and (k == 0 or i != ids[k - 1])]
    return "".join(CHARACTERS[i - 1] for i in kept)


def probe(name: str, epochs: int) -> dict:
    frames_of = encoder_frames(name)
    parts = real_split("ljs-reread")
    data = {part: [(frames_of(read_audio(u.audio, 16000)), u.text) for u in parts[part]] for part in ("train", "eval")}
    dim = data["train"][0][0].shape[-1]
    head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, len(CHARACTERS) + 1))
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    inputs = nn.utils.rnn.pad_sequence([f for f, _ in data["train"]], batch_first=True)
    input_lengths = torch.tensor([len(f) for f, _ in data["train"]])
    targets = [encode_text(t) for _, t in data["train"]]
    target_lengths = torch.tensor([len(t) for t in targets])
    for _ in range(epochs):
        log_probs = head(inputs).log_softmax(-1).transpose(0, 1)
        loss = F.ctc_loss(log_probs, torch.cat(targets), input_lengths, target_lengths, zero_infinity=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        scores = [score(text, greedy(head(frames))) for frames, text in data["eval"]]
    return error_rates(scores)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("encoders", nargs="+", help="ASR model folders or Whisper teacher names")
    parser.add_argument("--epochs", type=int, default=300, help="full-batch Adam steps (default 300)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| encoder | probe CER (ljs-reread eval) | probe WER | seconds |\n|---|---|---|---|")
    for name in args.encoders:
        torch.manual_seed(0)
        started = time.time()
        rates = probe(name, args.epochs)
        print(f"| {name} | {rates['cer']:.1%} | {rates['wer']:.1%} | {time.time() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
