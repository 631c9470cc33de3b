"""python -m streamssm.data COMMAND ...: make and prepare speech data (COMMAND --help for its options).

commands:
  text        offline English sentences, split into train and held-out text (text.py)
  keywords    TTS keyword and non-keyword clips for any keyword list (keyword_clips.py)
  sentences   TTS sentence corpora for ASR, train and held-out voices (sentences.py)
  negatives   hours-long keyword-free streams with pauses and noise, for false alarms per hour (streams.py)
  manifest    a manifest from a LibriSpeech or Speech Commands folder (readers.py)
  cache       fp16 log-mel feature shards of a corpus, for fast CPU training (cache.py)
  label       a teacher's transcripts and word times for untranscribed clips (label.py)
  pack        the training audio re-encoded small, to train on another machine (pack.py)
"""

import importlib
import sys

COMMANDS = {
    "text": "text",
    "keywords": "keyword_clips",
    "sentences": "sentences",
    "negatives": "streams",
    "manifest": "readers",
    "cache": "cache",
    "label": "label",
    "pack": "pack",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(__doc__ + (f"\nunknown command {argv[0]!r}" if argv else ""))
    module = importlib.import_module(f"{__package__}.{COMMANDS[argv[0]]}")
    module.main(argv[1:])


if __name__ == "__main__":
    main()
