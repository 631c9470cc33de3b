"""Models, their config dataclasses (stored with the weights), and save/load.

A model folder holds `config.json` (the config dataclass plus the model type) and
`model.safetensors`. `load_model("kws")` finds a bundled model by name; any folder path works too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .features import FeatureConfig
from .nn.encoder import EncoderConfig, EncoderState, MambaEncoder

PACKAGE_DIR = Path(__file__).resolve().parent
# a regular install carries the models inside the package; a source checkout has them beside it
BUNDLED_DIRS = (PACKAGE_DIR / "pretrained", PACKAGE_DIR.parent / "models")


@dataclass
class KWSConfig:
    """A keyword spotter: encoder, per-frame posteriors over `keywords` + filler, detector settings."""

    keywords: list[str]
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    thresholds: dict[str, float] = field(default_factory=dict)  # per keyword; default_threshold otherwise
    default_threshold: float = 0.5
    smoothing_frames: int = 3  # moving average of posteriors, in 40 ms frames
    refractory_s: float = 1.0  # a keyword fires at most once in this time
    keyword_durations: dict[str, float] = field(default_factory=dict)  # typical spoken length, s

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "KWSConfig":
        values = dict(values)
        values["encoder"] = EncoderConfig.from_dict(values["encoder"])
        values["features"] = FeatureConfig.from_dict(values["features"])
        return cls(**values)


class KWSModel(nn.Module):
    """Causal Mamba encoder with a per-frame classifier: class 0 is filler, class i is keywords[i-1]."""

    kind = "kws"

    def __init__(self, config: KWSConfig):
        super().__init__()
        self.config = config
        self.encoder = MambaEncoder(config.encoder)
        self.head = nn.Linear(config.encoder.d_model, len(config.keywords) + 1)

    def initial_state(self, batch_size: int = 1) -> EncoderState:
        return self.encoder.initial_state(batch_size)

    def forward(self, features, state: EncoderState | None = None, lengths=None):
        """features (b, 4T, n_mels) -> (logits (b, T, K+1), new state)."""
        encoded, state = self.encoder(features, state, lengths)
        return self.head(encoded), state


MODEL_TYPES = {cls.kind: (cls, config) for cls, config in ((KWSModel, KWSConfig),)}


def resolve_model_dir(name_or_path) -> Path:
    """A model folder from a path, or from the name of a bundled model."""
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path
    for bundled in BUNDLED_DIRS:
        if (bundled / str(name_or_path) / "config.json").is_file():
            return bundled / str(name_or_path)
    available = sorted({p.parent.name for d in BUNDLED_DIRS if d.is_dir() for p in d.glob("*/config.json")})
    raise FileNotFoundError(
        f"no model {str(name_or_path)!r}: not a folder with config.json and not a bundled model "
        f"(bundled: {', '.join(available) or 'none'})"
    )


def save_model(model: nn.Module, folder) -> Path:
    """Write config.json and model.safetensors; files are replaced only once fully written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"type": model.kind, **model.config.to_dict()}
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp_weights, tmp_config = folder / "model.safetensors.tmp", folder / "config.json.tmp"
    save_file(weights, str(tmp_weights))
    tmp_config.write_text(json.dumps(config, indent=2) + "\n")
    tmp_weights.replace(folder / "model.safetensors")
    tmp_config.replace(folder / "config.json")
    return folder


def load_model(name_or_path, device="cpu") -> nn.Module:
    """Load a bundled model by name ("kws") or a model folder, in eval mode."""
    folder = resolve_model_dir(name_or_path)
    values = json.loads((folder / "config.json").read_text())
    kind = values.pop("type")
    if kind not in MODEL_TYPES:
        raise ValueError(f"{folder}/config.json: unknown model type {kind!r} (known: {sorted(MODEL_TYPES)})")
    model_class, config_class = MODEL_TYPES[kind]
    model = model_class(config_class.from_dict(values))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.to(device).eval()
