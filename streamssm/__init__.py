"""streamssm: streaming keyword spotting and speech recognition on causal Mamba models."""

from .events import Event, Word
from .models import load_model
from .recognizer import Stream, StreamingRecognizer

__version__ = "0.1.0"
__all__ = ["Event", "Stream", "StreamingRecognizer", "Word", "load_model"]
