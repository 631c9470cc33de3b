"""Turning per-frame model outputs into events."""

# the searches of an ASR model (decoding/speech.py): greedy transducer, greedy CTC, CTC with words
SEARCHES = ("transducer", "ctc", "ctc-lm")
