"""Speech-recognition evaluation: WER, CER, real-time factor and streaming latency.

Each utterance, followed by TAIL_S of silence past the endpoint's trailing silence (so that its
final result comes from endpointing, as in a live stream), goes through a StreamingRecognizer:
- streaming: fed in chunks of `chunk_ms`, as live audio;
- offline: the same audio in one chunk. The searches step frame by frame, so both modes must give
  the same transcript; the report says whether they do.
An utterance's transcript is its final results joined. References and transcripts pass through
Whisper's English text normaliser (whisper-normalizer) before jiwer counts the errors; a set's WER
(CER) is its errors over its reference words (characters). Utterances whose reference has no words
once normalised (tones, silence) are skipped and listed.
Streaming latencies, in audio time: first partial = end of the chunk that returned the first
partial event minus the start of speech; text settled = end of the chunk that returned the last
change of the text shown (a partial with new text, or a final that differs from the partial before
it) minus the end of speech: how far the text trails the audio when the speaker stops; final = end
of the chunk that returned the last final event minus the end of speech (it includes the endpoint's
trailing silence); speech start and end come from `speech_span`. RTF = decoding wall
time over the decoded audio's duration, on one thread.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..audio import read_audio
from ..extras import require
from ..data.manifest import Utterance
from ..events import Event
from ..recognizer import StreamingRecognizer
from .sets import speech_set

MODES = ("streaming", "offline")
STREAMING_LATENCIES = ("first_partial_latency_s", "text_settled_latency_s", "final_latency_s")
TAIL_S = 2.0  # silence after the endpoint's trailing silence, for a late final
FRAME_S = 0.01  # frames of the speech-span energy rule
SPAN_WINDOW = 5  # frames whose mean power is a frame's level in that rule (50 ms)

jiwer = require("jiwer")
_english = require("whisper_normalizer.english").EnglishTextNormalizer()


def normalise(text: str) -> str:
    """Whisper's English normalisation: lower case, no punctuation, numbers as digits, US spelling."""
    return _english(text)


def score(reference: str, hypothesis: str) -> dict:
    """Word and character errors of one hypothesis, both sides normalised."""
    reference, hypothesis = normalise(reference), normalise(hypothesis)
    words, chars = jiwer.process_words(reference, hypothesis), jiwer.process_characters(reference, hypothesis)
    counts = {
        "substitutions": words.substitutions,
        "deletions": words.deletions,
        "insertions": words.insertions,
        "reference_words": words.hits + words.substitutions + words.deletions,
        "char_errors": chars.substitutions + chars.deletions + chars.insertions,
        "reference_chars": chars.hits + chars.substitutions + chars.deletions,
    }
    return {**counts, **error_rates([counts])}


def error_rates(scores: list[dict]) -> dict:
    """WER and CER of many scored utterances: all their errors over all their reference words (chars)."""
    word_errors = sum(s["substitutions"] + s["deletions"] + s["insertions"] for s in scores)
    words, chars = sum(s["reference_words"] for s in scores), sum(s["reference_chars"] for s in scores)
    return {"wer": word_errors / max(words, 1), "cer": sum(s["char_errors"] for s in scores) / max(chars, 1)}


def speech_span(
    audio: np.ndarray, rate: int, below_peak_db: float = 35.0, above_floor_db: float = 10.0, window: int = SPAN_WINDOW
):
    """(start, end) of speech in seconds, or None if there is none. Energy rule: the level of each
    10 ms frame is the mean power of the `window` frames around it; speech runs from the first to the
    last frame whose level is within `below_peak_db` of the loudest and at least `above_floor_db`
    above the noise floor (the 10th percentile of the levels). A window rather than single frames,
    so that a click or a breath in a noisy recording does not count as speech (checked against a
    teacher's word times: benchmarks/speech_span.md)."""
    size = round(rate * FRAME_S)
    frames = audio[: len(audio) // size * size].reshape(-1, size).astype(np.float64)
    if not len(frames):
        return None
    power = np.convolve((frames**2).mean(1), np.ones(window) / window, mode="same")
    level = 10 * np.log10(power + 1e-12)
    loud = np.flatnonzero(level >= max(level.max() - below_peak_db, np.percentile(level, 10) + above_floor_db))
    return (round(loud[0] * FRAME_S, 3), round((loud[-1] + 1) * FRAME_S, 3)) if len(loud) else None


@dataclass
class Decoded:
    """One utterance through one stream; times are audio times in seconds."""

    finals: list[Event]  # the final results, in order
    seconds: float  # wall time of decoding
    first_partial_at: float | None  # end of the chunk that returned the first partial
    text_settled_at: float | None  # end of the chunk that returned the last change of the text shown
    last_final_at: float | None  # end of the chunk that returned the last final

    @property
    def text(self) -> str:
        return " ".join(e.text for e in self.finals)


def decode(recognizer: StreamingRecognizer, audio: np.ndarray, rate: int, chunk_samples: int) -> Decoded:
    """Feed `audio` to a new stream in chunks of `chunk_samples`, then finish it."""
    stream, returned = recognizer.create_stream(), []
    started = time.perf_counter()
    for start in range(0, len(audio), chunk_samples):
        chunk = audio[start : start + chunk_samples]
        returned += [((start + len(chunk)) / rate, e) for e in stream.accept_waveform(chunk, rate)]
    returned += [(len(audio) / rate, e) for e in stream.finish()]
    seconds = time.perf_counter() - started
    partials = [at for at, e in returned if e.kind == "partial"]
    finals = [(at, e) for at, e in returned if e.kind == "final"]
    return Decoded(
        [e for _, e in finals],
        seconds,
        partials[0] if partials else None,
        last_text_change(returned),
        finals[-1][0] if finals else None,
    )


def last_text_change(returned) -> float | None:
    """The time of the last (time, event) pair that changed the text shown: a partial whose text
    differs from the one before it in its utterance, or a final whose text differs from its last partial."""
    shown, changed_at = "", None
    for at, event in returned:
        if event.text != shown:
            changed_at = at
        shown = "" if event.kind == "final" else event.text
    return changed_at


def load_recognizer(model, search: str | None = None, backend: str | None = None) -> StreamingRecognizer:
    """The recogniser of a bundled model name or model folder, with its own search or `search`, on
    `backend` (None: from_pretrained's default); it must be a speech recogniser."""
    options = {} if search is None else {"search": search}
    recognizer = StreamingRecognizer.from_pretrained(model, backend=backend, **options)
    if recognizer.model.kind != "asr":
        raise ValueError(f"{model!r} is a {recognizer.model.kind} model; this evaluation needs an asr model")
    return recognizer


def load_sets(names, limit: int | None = None) -> dict[str, list[Utterance]]:
    """Named sets or manifests (see sets.py), the first `limit` utterances of each; all need texts."""
    sets = {}
    for name in names:
        set_name, utterances = speech_set(name)
        if set_name in sets:
            raise ValueError(f"two sets are named {set_name!r}; give the manifests distinct folder or file names")
        untexted = [u for u in utterances if not u.text]
        if untexted:
            raise ValueError(
                f"set {set_name!r}: {len(untexted)} utterances have no reference text, e.g. {untexted[0].audio}"
            )
        if not utterances:
            raise ValueError(f"set {set_name!r} has no utterances")
        sets[set_name] = utterances[:limit]
    return sets


def tail_seconds(recognizer) -> float:
    """The silence decoded after each utterance."""
    return recognizer.decoding.endpoint.trailing_silence_s + TAIL_S


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def evaluate_utterance(recognizer, utterance: Utterance, modes, chunk_ms: float) -> dict:
    rate = recognizer.model.config.features.sample_rate
    audio = read_audio(utterance.audio, rate)
    decoded_audio = np.concatenate([audio, np.zeros(round(rate * tail_seconds(recognizer)), np.float32)])
    speech_start, speech_end = speech_span(audio, rate) or (None, None)
    row = {
        "audio": str(utterance.audio),
        "duration": len(audio) / rate,
        "decoded_duration": len(decoded_audio) / rate,
        "reference": utterance.text,
        "speech_start": speech_start,
        "speech_end": speech_end,
    }
    for mode in modes:
        chunk = max(1, round(rate * chunk_ms / 1000)) if mode == "streaming" else len(decoded_audio)
        decoded = decode(recognizer, decoded_audio, rate, chunk)
        row[mode] = {"hypothesis": decoded.text, **score(utterance.text, decoded.text), "seconds": decoded.seconds}
        if mode == "streaming":
            row[mode]["first_partial_latency_s"] = difference(decoded.first_partial_at, speech_start)
            row[mode]["text_settled_latency_s"] = difference(decoded.text_settled_at, speech_end)
            row[mode]["final_latency_s"] = difference(decoded.last_final_at, speech_end)
    if set(modes) == set(MODES):
        row["modes_agree"] = row["streaming"]["hypothesis"] == row["offline"]["hypothesis"]
    return row


def evaluate_set(recognizer, name: str, utterances, modes, chunk_ms: float) -> dict:
    """Every scorable utterance of a set in each mode: per-utterance rows and the set's totals."""
    rows, skipped = [], []
    for utterance in tqdm(utterances, desc=name, unit="utt"):
        if normalise(utterance.text):
            rows.append(evaluate_utterance(recognizer, utterance, modes, chunk_ms))
        else:
            skipped.append({"audio": str(utterance.audio), "reference": utterance.text})
    decoded_seconds = sum(r["decoded_duration"] for r in rows)
    result = {"utterances": len(rows), "hours": sum(r["duration"] for r in rows) / 3600}
    for mode in modes:
        results = [r[mode] for r in rows]
        result[mode] = {**error_rates(results), "rtf": sum(r["seconds"] for r in results) / max(decoded_seconds, 1e-9)}
        if mode == "streaming":
            for latency in STREAMING_LATENCIES:
                result[mode][f"median_{latency}"] = median(r[latency] for r in results)
    if set(modes) == set(MODES):
        result["modes_agree"] = all(r["modes_agree"] for r in rows)
    return {**result, "skipped_without_words": skipped, "rows": rows}


def evaluate(
    recognizer, sets: dict[str, list[Utterance]], out, modes=MODES, chunk_ms: float = 160, model_name: str = ""
) -> dict:
    """Evaluate on every set; writes report.json, summary.md and wer.png to `out`."""
    torch.set_num_threads(1)
    report = {
        "model": model_name,
        "search": recognizer.decoding.search_name,
        **({"word_search": recognizer.decoding.search.config.to_dict()} if recognizer.decoding.searches_words else {}),
        "backend": recognizer.backend.name,
        "modes": list(modes),
        "chunk_ms": chunk_ms,
        "threads": 1,
        "normaliser": "whisper_normalizer.english.EnglishTextNormalizer",
        "tail_silence_s": tail_seconds(recognizer),
        "sets": {
            name: evaluate_set(recognizer, name, utterances, modes, chunk_ms) for name, utterances in sets.items()
        },
    }
    if set(modes) == set(MODES):
        report["modes_agree"] = all(s["modes_agree"] for s in report["sets"].values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "summary.md").write_text(summary_table(report))
    plot_wer(report, out / "wer.png")
    return report


def summary_table(report) -> str:
    """Markdown: one row per set and mode, then whether the modes agree and what was skipped."""
    seconds = lambda value: "–" if value is None else f"{value:.3f}"
    lines = [
        "| set | mode | utterances | hours | WER | CER | RTF | median first partial (s) | median text settled (s) "
        "| median final (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in report["sets"].items():
        for mode in report["modes"]:
            row = result[mode]
            lines.append(
                f"| {name} | {mode} | {result['utterances']} | {result['hours']:.4f} | {row['wer']:.1%} | "
                f"{row['cer']:.1%} | {row['rtf']:.3f} | "
                + " | ".join(seconds(row.get(f"median_{latency}")) for latency in STREAMING_LATENCIES)
                + " |"
            )
    lines.append("")
    if "modes_agree" in report:
        differing = [r["audio"] for s in report["sets"].values() for r in s["rows"] if not r["modes_agree"]]
        lines.append(
            "Streaming and offline transcripts agree on every utterance."
            if not differing
            else f"Streaming and offline transcripts DIFFER on {len(differing)} utterances, e.g. {differing[0]}."
        )
    for name, result in report["sets"].items():
        if result["skipped_without_words"]:
            lines.append(f"{name}: {len(result['skipped_without_words'])} utterances without words to score skipped.")
    chunks = f"streaming in {report['chunk_ms']:g} ms chunks; " if "streaming" in report["modes"] else ""
    options = report.get("word_search")
    search = report["search"] + (" (" + ", ".join(f"{k} {v}" for k, v in options.items()) + ")" if options else "")
    lines.append(
        f"Model: {report['model']}; {report['backend']} backend; {search} search; {chunks}1 thread; both sides normalised "
        "by Whisper's English normaliser."
    )
    return "\n".join(lines) + "\n"


def plot_wer(report, path):
    matplotlib = require("matplotlib")

    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")

    names, modes = list(report["sets"]), report["modes"]
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(names), 4))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        positions = np.arange(len(names)) + (i - (len(modes) - 1) / 2) * width
        bars = ax.bar(positions, [100 * report["sets"][n][mode]["wer"] for n in names], width, label=mode)
        ax.bar_label(bars, fmt="%.1f")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("WER (%)")
    ax.set_title(f"WER per set: {report['model']}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
