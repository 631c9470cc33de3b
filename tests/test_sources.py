"""Chunk sources: the real PortAudio microphone path (through a virtual microphone) and files."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
import soxr

from streamssm.sources import file_chunks
from virtual_mic import isolated_pulse_env, run_python, virtual_mic  # noqa: F401 (fixture)

SPEECH = "kws/wwb/alexa/1.flac"

# Records from the default input until stdin closes, then saves the audio and reports.
# It says "recording" once audio arrives, so the playback cannot start before the recording.
RECORDER = """
import json, sys, threading
import numpy as np
from streamssm.sources import MicrophoneSource
out, rate = sys.argv[1], int(sys.argv[2])
with MicrophoneSource(sample_rate=rate) as mic:
    threading.Thread(target=lambda: (sys.stdin.read(), mic.close()), daemon=True).start()
    chunks = []
    for chunk, _ in mic:
        if not chunks:
            print("recording", flush=True)
        chunks.append(chunk)
np.save(out, np.concatenate(chunks))
print(json.dumps({"rate": mic.sample_rate, "overflows": mic.overflows,
                  "overflows_type": type(mic.overflows).__name__,
                  "dtypes": sorted({str(c.dtype) for c in chunks}),
                  "sizes": sorted({len(c) for c in chunks})}))
"""

# Prints the message of the MicrophoneUnavailable that MicrophoneSource(device) raises.
OPEN_FAILS = """
import sys
from streamssm.sources import MicrophoneSource, MicrophoneUnavailable
try:
    MicrophoneSource(device=sys.argv[1] or None)
except MicrophoneUnavailable as error:
    print(error)
else:
    sys.exit("MicrophoneSource opened")
"""

# As if libportaudio2 were not installed: sounddevice finds no PortAudio library.
WITHOUT_PORTAUDIO = """
import ctypes.util
find_library = ctypes.util.find_library
ctypes.util.find_library = lambda name: None if "portaudio" in name else find_library(name)
import streamssm.sources as sources
messages = []
for attempt in (sources.MicrophoneSource, sources.list_input_devices):
    try:
        attempt()
    except sources.MicrophoneUnavailable as error:
        messages.append(str(error))
print("\\n".join(messages))
"""


def best_alignment(reference, recording):
    """Peak normalised cross-correlation of ``reference`` against windows of ``recording``.

    Returns (correlation, gain, offset in samples) at the best-matching window.
    """
    reference, recording = reference.astype(np.float64), recording.astype(np.float64)
    n = len(reference)
    size = 1 << (len(recording) + n).bit_length()
    products = np.fft.irfft(np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size)), size)
    products = products[: len(recording) - n + 1]
    energy = np.concatenate([[0.0], np.cumsum(recording**2)])
    window_norms = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-12))
    correlation = products / (np.linalg.norm(reference) * window_norms)
    offset = int(np.argmax(correlation))
    return correlation[offset], products[offset] / np.sum(reference**2), offset


def start_recorder(mic, out, rate):
    """RECORDER in a subprocess that sees the virtual microphone; close its stdin to stop it."""
    return subprocess.Popen(
        [sys.executable, "-c", RECORDER, str(out), str(rate)],
        env=mic.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("rate", [16000, 48000])
def test_microphone_records_what_is_played(virtual_mic, shared_data, tmp_path, rate):
    source = shared_data / SPEECH
    reference, source_rate = soundfile.read(source, dtype="float32")
    with start_recorder(virtual_mic, tmp_path / "recording.npy", rate) as recorder:
        recording_started = recorder.stdout.readline().strip() == "recording"
        played = recording_started and virtual_mic.play(source).wait(timeout=30) == 0
        time.sleep(0.3)  # the tail of the playback is still on its way to the recorder
        report, errors = recorder.communicate(timeout=30)
    assert recording_started and recorder.returncode == 0, errors
    assert played
    report = json.loads(report)
    assert report["rate"] == rate
    assert report["overflows_type"] == "int"
    assert report["dtypes"] == ["float32"]
    assert report["sizes"] == [rate * 40 // 1000]

    recording = soxr.resample(np.load(tmp_path / "recording.npy"), rate, source_rate)
    duration, source_duration = len(recording) / source_rate, len(reference) / source_rate
    assert source_duration < duration < source_duration + 3.0
    correlation, gain, offset = best_alignment(reference, recording)
    assert correlation >= 0.9, f"recording matches the source only at {correlation:.3f}"
    assert 0.7 < gain < 1.4
    assert offset / source_rate < 2.0


def test_list_input_devices_shows_the_virtual_microphone(virtual_mic):
    table = run_python(
        "from streamssm.sources import list_input_devices; print(list_input_devices())", virtual_mic.env
    ).stdout
    rows = [line.split() for line in table.splitlines()[1:]]
    names = {row[2] if row[0] == "*" else row[1] for row in rows}
    assert {"pulse", "default"} <= names, table
    assert [row[2] for row in rows if row[0] == "*"] == ["default"], table


def test_named_missing_device_is_unavailable(virtual_mic):
    message = run_python(OPEN_FAILS, virtual_mic.env, "no such microphone").stdout
    assert "No input device matching 'no such microphone'" in message
    assert "--list-devices" in message and "--device" in message and "--input FILE" in message


def test_no_sound_server_is_unavailable(tmp_path):
    env = isolated_pulse_env(tmp_path, f"unix:{tmp_path / 'missing' / 'native'}")
    message = run_python(OPEN_FAILS, env, "").stdout
    assert message.startswith("No input device is available")
    assert "--list-devices" in message and "--input FILE" in message


def test_missing_portaudio_names_the_debian_package(tmp_path):
    env = isolated_pulse_env(tmp_path, f"unix:{tmp_path / 'missing' / 'native'}")
    messages = run_python(WITHOUT_PORTAUDIO, env).stdout.splitlines()
    assert len(messages) == 2
    for message in messages:
        assert "PortAudio library" in message and "libportaudio2" in message and "--input FILE" in message


@pytest.fixture
def stereo_file(tmp_path):
    """One second of two different channels at 22.05 kHz."""
    rate = 22050
    t = np.arange(rate) / rate
    audio = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 97 * t)], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, audio, rate, subtype="FLOAT")
    return path, audio.astype(np.float32), rate


def test_file_chunks_are_the_file_downmixed(stereo_file):
    path, audio, rate = stereo_file
    chunks = list(file_chunks(path, block_ms=40))
    assert {r for _, r in chunks} == {rate}
    assert all(c.dtype == np.float32 and c.ndim == 1 for c, _ in chunks)
    block = round(rate * 0.04)
    assert [len(c) for c, _ in chunks[:-1]] == [block] * (len(chunks) - 1)
    assert 0 < len(chunks[-1][0]) <= block
    np.testing.assert_allclose(np.concatenate([c for c, _ in chunks]), audio.mean(axis=1), atol=1e-7)


def test_file_chunks_realtime_pacing(stereo_file):
    """In real time, no chunk comes before a microphone would have recorded its last sample (a
    lower bound only: how much later it comes depends on the machine's load)."""
    path, _, _ = stereo_file
    started, recorded = time.monotonic(), 0
    for chunk, rate in file_chunks(path, realtime=True):
        recorded += len(chunk)
        assert time.monotonic() - started >= recorded / rate - 1e-3
    assert recorded == sum(len(chunk) for chunk, _ in file_chunks(path))
