"""Every program in demos/ runs from the repository root and prints what it promises, on the
recordings shipped in demos/audio."""

import re
import subprocess
import sys

from serve_helpers import free_port, running
from virtual_mic import REPO


def run_demo(name, *args) -> str:
    done = subprocess.run(
        [sys.executable, f"demos/{name}", *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_live_keywords_with_a_subset_and_thresholds():
    out = run_demo("live_keywords.py", "demos/audio/alexa.flac")
    assert "listening for alexa, hey computer, stop, seven" in out and "'alexa': 0.6" in out
    assert re.search(r"\d+\.\d\d s  alexa  \(score", out), out


def test_transcribe_a_file_with_word_times():
    out = run_demo("transcribe_file.py")
    finals = [line for line in out.splitlines() if line.startswith("final (")]
    words = re.findall(r"^ +(\d+\.\d\d) +(\d+\.\d\d)  \S+$", out, re.M)
    assert finals and words, out
    assert all(float(start) <= float(end) for start, end in words)


def test_many_streams_through_decode_streams():
    out = run_demo("many_streams.py")
    assert re.search(r"^alexa\.flac +alexa$", out, re.M) and re.search(r"^seven\.flac +seven$", out, re.M), out
    assert re.search(r"^hey_computer\.flac +hey computer$", out, re.M), out


def test_a_long_stream_keeps_its_state_size():
    out = run_demo("long_stream.py", "2")
    sizes = re.findall(r"state ([\d,]+) bytes", out)
    assert len(sizes) == 2 and len(set(sizes)) == 1, out
    assert "24 detections of 'alexa' in 2 min (24 said)" in out


def test_a_client_of_the_websocket_server():
    port = free_port()
    with running("streamssm.serve", "--model", "kws", "--port", str(port)):
        out = run_demo("server_client.py", "demos/audio/hey_computer.flac", "--url", f"ws://127.0.0.1:{port}")
    assert re.search(r"^ +\d+\.\d\d s  keyword  hey computer$", out, re.M), out
