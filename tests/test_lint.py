"""ruff (the dev extra) passes: its lint rules (pyproject.toml) on everything, and its formatter on
the files already formatted with it (FORMATTED; the rest is to be formatted in one go when no one
else is changing it)."""

import subprocess
import sys

from virtual_mic import REPO

FORMATTED = ["demos", "streamssm/extras.py", "tests/test_demos.py", "tests/test_extras.py", "tests/test_lint.py"]


def ruff(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_lint():
    done = ruff("check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_format():
    done = ruff("format", "--check", *FORMATTED)
    assert done.returncode == 0, done.stdout + done.stderr
