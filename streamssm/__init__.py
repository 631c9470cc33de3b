"""streamssm: streaming keyword spotting and speech recognition on causal Mamba models."""

__version__ = "0.1.0"
