"""python -m streamssm.mic end to end: the shipped model hears a real recording played into a
virtual microphone (PulseAudio -> PortAudio -> sounddevice) and reports what it reports on the file."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile

from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split
from virtual_mic import REPO, virtual_mic  # noqa: F401 (fixture)

MIC = [sys.executable, "-m", "streamssm.mic", "--model", "kws"]


def run_on_file(path) -> list[dict]:
    done = subprocess.run([*MIC, "--input", str(path), "--fast", "--json"], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def held_out_recording(tmp_path) -> tuple:
    """A held-out "alexa" clip, with silence around it, that the file path detects; and its events."""
    for utterance in [u for u in real_kws_split("wwb")["eval"] if u.keyword == "alexa"][:10]:
        path = tmp_path / "alexa.wav"
        silence = np.zeros(8000, np.float32)
        soundfile.write(path, np.concatenate([silence, read_audio(utterance.audio), silence, silence]), 16000)
        events = run_on_file(path)
        if [e["text"] for e in events] == ["alexa"]:
            return path, events
    raise AssertionError("the file path detected none of 10 held-out 'alexa' clips")


def test_file_input_reports_json_events(tmp_path, shared_data):
    path, events = held_out_recording(tmp_path)
    assert {"kind", "text", "start", "end", "score"} <= set(events[0])
    assert events[0]["kind"] == "keyword" and 0 < events[0]["start"] < events[0]["end"] < 4


def test_microphone_hears_what_the_file_path_hears(virtual_mic, tmp_path, shared_data):
    path, _ = held_out_recording(tmp_path)
    listener = subprocess.Popen([*MIC, "--device", "pulse"], env=virtual_mic.env, cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert listener.stderr.readline().startswith("listening to"), "the CLI did not start listening"
        time.sleep(1.0)  # the input stream is started right after that line
        assert virtual_mic.play(path).wait(timeout=30) == 0
        time.sleep(1.0)  # the last blocks are still on their way
        listener.send_signal(signal.SIGINT)
        out, errors = listener.communicate(timeout=30)
    finally:
        listener.kill()
    assert listener.returncode == 0, errors
    detections = [line.split()[3] for line in out.splitlines() if " keyword " in line]
    assert detections == ["alexa"], out + errors
    assert "input overflow(s)" in errors
