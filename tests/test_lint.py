"""ruff (the dev extra) passes on everything: its lint rules (pyproject.toml) and its formatter."""

import subprocess
import sys

from virtual_mic import REPO


def ruff(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_lint():
    done = ruff("check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_format():
    done = ruff("format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr
