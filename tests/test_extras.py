"""An optional piece that is not installed gives a one-line error naming its install command."""

import subprocess
import sys

import pytest

from virtual_mic import REPO

ABSENT = (
    "import runpy, sys\nsys.modules[{module!r}] = None  # import {module} now fails as if not installed\n"
    "sys.argv = ['x', *{args!r}]\nrunpy.run_module({tool!r}, run_name='__main__')"
)


@pytest.mark.parametrize(
    "module, tool, args, command",
    [
        ("sounddevice", "streamssm.mic", ["--list-devices"], 'pip install "streamssm[mic]"'),
        ("jiwer", "streamssm.eval", ["asr", "--model", "asr"], 'pip install "streamssm[eval]"'),
        ("onnxruntime", "streamssm.eval", ["kws", "--backend", "onnx"], 'pip install "streamssm[onnx]"'),
        ("onnxscript", "streamssm.export", ["no-such-model"], 'pip install "streamssm[onnx]"'),
    ],
)
def test_a_missing_piece_names_its_install_command(module, tool, args, command):
    done = subprocess.run(
        [sys.executable, "-c", ABSENT.format(module=module, tool=tool, args=args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {module} is not installed") and command in lines[0]
