"""Running the servers in tests: a server process on a free port, and held-out recordings with the
events that decoding them alone gives."""

import contextlib
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split, real_split
from streamssm.recognizer import StreamingRecognizer
from virtual_mic import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(module: str, *args: str):
    """`python -m MODULE ARGS` until the block ends; yields its first line ("serving ... on ...")."""
    server = subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=REPO, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        before = []  # warnings, if any, come before the line the server prints once it listens
        while not (line := server.stderr.readline()).startswith("serving"):
            if not line:
                pytest.fail(f"{module} did not start: {''.join(before)}")
            before.append(line)
        threading.Thread(target=server.stderr.read, daemon=True).start()  # a full pipe would block it
        yield line.strip()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def padded(audio: np.ndarray, rate: int = 16000) -> np.ndarray:
    """`audio` with 0.5 s of silence before and 1 s after."""
    return np.concatenate([np.zeros(rate // 2, np.float32), audio, np.zeros(rate, np.float32)])


def decode_alone(recognizer: StreamingRecognizer, chunk, rate: int, downmix: bool = False) -> list:
    """The events of `chunk` fed to a new stream in one piece, then finished."""
    stream = recognizer.create_stream()
    return stream.accept_waveform(chunk, rate, downmix=downmix) + stream.finish()


@pytest.fixture(scope="session")
def kws_recognizer():
    return StreamingRecognizer.from_pretrained("kws")


@pytest.fixture(scope="session")
def alexa(shared_data, kws_recognizer) -> np.ndarray:
    """A held-out real "alexa" (16 kHz float32, silence around it) that decoding alone hears as just
    that, well above its threshold (0.99): a browser's resampling must not tip it under."""
    for utterance in [u for u in real_kws_split("wwb")["eval"] if u.keyword == "alexa"][:10]:
        audio = padded(read_audio(utterance.audio))
        events = decode_alone(kws_recognizer, audio, 16000)
        if [e.text for e in events] == ["alexa"] and events[0].score >= 0.998:
            return audio
    raise AssertionError("none of 10 held-out 'alexa' clips is detected on its own with a score >= 0.998")


@pytest.fixture(scope="session")
def sentence(shared_data) -> np.ndarray:
    """A held-out real read sentence (16 kHz float32, silence around it)."""
    return padded(read_audio(real_split("ljs-reread")["eval"][0].audio))


def as_int16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
