"""A regular (non-editable) install carries the shipped models: from_pretrained("kws") works from it."""

import os
import subprocess
import sys
import zipfile

from virtual_mic import REPO


def test_wheel_carries_the_models_and_loads_them(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "wheel").glob("streamssm-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p.relative_to(REPO / "models") for p in (REPO / "models").glob("*/*") if p.name != "eval"]
    assert shipped
    for path in shipped:
        if path.suffix in (".json", ".safetensors", ".model", ".md", ".onnx"):
            assert f"streamssm/pretrained/{path.as_posix()}" in names

    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import streamssm; from streamssm import StreamingRecognizer; "
        "rec = StreamingRecognizer.from_pretrained('kws'); asr = StreamingRecognizer.from_pretrained('asr'); "
        "print(streamssm.__file__, len(rec.keywords), rec.backend.name, asr.backend.name)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert loaded.returncode == 0, loaded.stderr
    module_file, keywords, *backends = loaded.stdout.split()
    assert module_file.startswith(str(tmp_path / "site")) and int(keywords) == 30
    assert backends == ["onnx", "onnx"]  # the installed graphs find the weights they refer to


def test_imports_from_the_folder_that_holds_a_clone_named_streamssm(tmp_path):
    """`git clone .../streamssm` then `python` beside it: the clone folder (no __init__.py) must not
    hide the installed package (an editable install must put the repository on sys.path, as
    scripts/install.sh does with editable_mode=compat)."""
    (tmp_path / "streamssm").symlink_to(REPO, target_is_directory=True)
    probe = "import streamssm; from streamssm import StreamingRecognizer; print(streamssm.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().endswith("__init__.py")
