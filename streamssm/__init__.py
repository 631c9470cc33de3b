"""streamssm: streaming keyword spotting and speech recognition on causal Mamba models.

The names below load PyTorch when first used, so that command-line tools start quickly.
"""

from importlib import import_module

from .events import Event, Word

__version__ = "0.1.0"
__all__ = ["Event", "Stream", "StreamingRecognizer", "Word", "load_model"]
_LAZY = {"Stream": ".recognizer", "StreamingRecognizer": ".recognizer", "load_model": ".models"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'streamssm' has no attribute {name!r}")
