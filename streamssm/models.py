"""Models, their config dataclasses (stored with the weights), and save/load.

A model folder holds `config.json` (the config dataclass plus the model type) and
`model.safetensors`, and an ASR model's `tokenizer.model`. `load_model("kws")` finds a bundled
model by name; any folder path works too.
"""

from __future__ import annotations

import json
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import JSONConfig
from .decoding import SEARCHES
from .decoding.endpoint import EndpointConfig
from .decoding.losses import ctc_loss, rnnt_loss
from .decoding.word_search import WordSearchConfig
from .features import FeatureConfig, encoder_frames
from .nn.decoder import DecoderConfig, MambaDecoder
from .nn.encoder import SUBSAMPLING, EncoderConfig, EncoderState, MambaEncoder
from .nn.joiner import Joiner
from .tokenizer import BLANK_ID, TOKENIZER_FILE, Tokenizer

PACKAGE_DIR = Path(__file__).resolve().parent
# a regular install carries the models inside the package; a source checkout has them beside it
BUNDLED_DIRS = (PACKAGE_DIR / "pretrained", PACKAGE_DIR.parent / "models")
WEIGHTS_FILE = "model.safetensors"  # a model folder's weights


@dataclass
class KWSConfig(JSONConfig):
    """A keyword spotter: encoder, per-frame posteriors over `keywords` + filler, detector settings."""

    keywords: list[str]
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    thresholds: dict[str, float] = field(default_factory=dict)  # per keyword; default_threshold otherwise
    default_threshold: float = 0.5
    smoothing_frames: int = 3  # moving average of posteriors, in 40 ms frames
    refractory_s: float = 2.0  # nothing fires again for this long after a detection
    repeat_s: float = 2.0  # the same keyword is not reported again for this long
    keyword_durations: dict[str, float] = field(default_factory=dict)  # typical spoken length, s

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


@dataclass
class ASRConfig(JSONConfig):
    """A speech recogniser: encoder, CTC head, Mamba transducer decoder and joiner, decoding settings."""

    vocab_size: int  # the tokenizer's, blank included
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    joiner_dim: int = 256
    ctc_weight: float = 0.3  # loss = transducer + ctc_weight * CTC
    search: str = "transducer"  # "transducer" (greedy), "ctc" (greedy) or "ctc-lm" (words, decoding/word_search.py)
    max_symbols_per_frame: int = 3
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    word_search: WordSearchConfig = field(default_factory=WordSearchConfig)  # the options of "ctc-lm"

    def __post_init__(self):
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {self.search!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "ASRConfig":
        values = dict(values)
        for name, config_class in (
            ("encoder", EncoderConfig),
            ("decoder", DecoderConfig),
            ("features", FeatureConfig),
            ("endpoint", EndpointConfig),
            ("word_search", WordSearchConfig),
        ):
            if name in values:  # word_search: absent from the configs of older models
                values[name] = config_class.from_dict(values[name])
        return cls(**values)


class ASRModel(nn.Module):
    """Causal Mamba encoder with a CTC head and a transducer (Mamba decoder + joiner); id 0 is the blank.

    For training: `total, transducer, ctc = model.loss(features, feature_lengths, tokens, token_lengths)`
    (or `model(...)`, the same) with tokens from `model.tokenizer.encode_batch(texts)`.
    """

    kind = "asr"

    def __init__(self, config: ASRConfig, tokenizer: Tokenizer):
        super().__init__()
        if tokenizer.vocab_size != config.vocab_size:
            raise ValueError(
                f"the tokenizer has {tokenizer.vocab_size} tokens but config.vocab_size is {config.vocab_size}"
            )
        self.config, self.tokenizer = config, tokenizer
        d_encoder, d_decoder = config.encoder.d_model, config.decoder.d_model
        self.encoder = MambaEncoder(config.encoder)
        self.ctc_head = nn.Linear(d_encoder, config.vocab_size)
        self.decoder = MambaDecoder(config.decoder, config.vocab_size)
        self.joiner = Joiner(d_encoder, d_decoder, config.joiner_dim, config.vocab_size)

    def initial_state(self, batch_size: int = 1) -> EncoderState:
        return self.encoder.initial_state(batch_size)

    def forward(self, features, feature_lengths, tokens, token_lengths, lattice_rows: int | None = None):
        """The training losses, as `loss`: calling the module is what DistributedDataParallel syncs.
        (Streaming and decoding use `encoder`, `ctc_head`, `decoder` and `joiner` directly.)"""
        return self.loss(features, feature_lengths, tokens, token_lengths, lattice_rows)

    def loss(self, features, feature_lengths, tokens, token_lengths, lattice_rows: int | None = None):
        """(total, transducer, ctc) losses, each the batch mean of a per-utterance sum.

        features (b, F, n_mels) padded, feature_lengths (b,) in feature frames (any number: the
        last group of 4 is zero-padded), tokens (b, U) padded (any value past a row's length),
        token_lengths (b,). `lattice_rows`: see `text_losses`.
        """
        encoded, frames, _ = self.encode_batch(features, feature_lengths, tokens, token_lengths)
        return self.text_losses(encoded, frames, tokens, token_lengths, lattice_rows)

    def encode_batch(self, features, feature_lengths, tokens, token_lengths):
        """Check a padded training batch and encode it: (encoded (b, T, d), frames (b,), the encoder's
        hidden states (`MambaEncoder.forward_hidden`))."""
        batch = {features.shape[0], tokens.shape[0], len(feature_lengths), len(token_lengths)}
        if features.dim() != 3 or tokens.dim() != 2 or len(batch) != 1:
            raise ValueError(
                f"need features (b, F, n_mels), tokens (b, U) and lengths (b,), got {tuple(features.shape)}, "
                f"{tuple(tokens.shape)}, {tuple(feature_lengths.shape)}, {tuple(token_lengths.shape)}"
            )
        if int(feature_lengths.min()) < 1 or int(feature_lengths.max()) > features.shape[1]:
            raise ValueError(f"feature_lengths must be in [1, {features.shape[1]}], got {feature_lengths.tolist()}")
        frames = encoder_frames(feature_lengths)
        features = features[:, : int(frames.max()) * SUBSAMPLING]
        features = F.pad(features, (0, 0, 0, int(frames.max()) * SUBSAMPLING - features.shape[1]))
        encoded, _, hidden = self.encoder.forward_hidden(features)
        return encoded, frames, hidden

    def text_losses(self, encoded, frames, tokens, token_lengths, lattice_rows: int | None = None):
        """(total, transducer, ctc) from encoded frames. With `lattice_rows`, the transducer lattice
        (rows x T x U+1 x vocabulary, the largest tensor of a step) is built for that many
        utterances at a time and rebuilt in the backward pass, which bounds its memory."""
        labels = tokens[:, : int(token_lengths.max())]
        padding = torch.arange(labels.shape[1], device=labels.device) >= token_lengths[:, None].to(labels.device)
        labels = labels.masked_fill(padding, BLANK_ID)
        ctc = ctc_loss(self.ctc_head(encoded), frames, labels, token_lengths)
        predicted, _ = self.decoder(F.pad(labels, (1, 0), value=BLANK_ID))
        rows = lattice_rows or encoded.shape[0]
        parts = [slice(start, start + rows) for start in range(0, encoded.shape[0], rows)]
        run = (
            self._transducer_sum if len(parts) == 1 else partial(checkpoint, self._transducer_sum, use_reentrant=False)
        )
        transducer = sum(run(encoded[p], predicted[p], labels[p], frames[p], token_lengths[p]) for p in parts)
        transducer = transducer / encoded.shape[0]
        return transducer + self.config.ctc_weight * ctc, transducer, ctc

    def _transducer_sum(self, encoded, predicted, labels, frames, token_lengths):
        """The summed transducer loss of some rows, their lattice cut to their own longest row."""
        n_frames, n_labels = int(frames.max()), int(token_lengths.max())
        lattice = self.joiner(encoded[:, :n_frames, None], predicted[:, None, : n_labels + 1])
        return rnnt_loss(lattice, labels[:, :n_labels], frames, token_lengths, reduction="sum")

    def save_files(self, folder: Path):
        self.tokenizer.save(folder / TOKENIZER_FILE)

    @classmethod
    def from_folder(cls, config: ASRConfig, folder: Path) -> "ASRModel":
        return cls(config, Tokenizer.load(folder / TOKENIZER_FILE))


MODEL_TYPES = {cls.kind: (cls, config) for cls, config in ((KWSModel, KWSConfig), (ASRModel, ASRConfig))}


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


def save_model(model: nn.Module, folder, dtype: torch.dtype | None = None) -> Path:
    """Write config.json, model.safetensors and the model's own files (an ASR model's tokenizer);
    files are replaced only once fully written, config.json last. With `dtype` (torch.float16: half
    the file) floating-point tensors are stored in it; loading casts them back to the model's dtype."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"type": model.kind, **model.config.to_dict()}
    weights = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    tmp_weights, tmp_config = folder / f"{WEIGHTS_FILE}.tmp", folder / "config.json.tmp"
    save_file(weights, str(tmp_weights))
    tmp_config.write_text(json.dumps(config, indent=2) + "\n")
    tmp_weights.replace(folder / WEIGHTS_FILE)
    if hasattr(model, "save_files"):
        model.save_files(folder)
    tmp_config.replace(folder / "config.json")
    return folder


def load_model(name_or_path, device="cpu") -> nn.Module:
    """Load a bundled model by name ("kws") or a model folder, in eval mode."""
    folder = resolve_model_dir(name_or_path)
    try:
        values = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{folder / 'config.json'} is not valid JSON ({error})") from error
    kind = values.pop("type")
    if kind not in MODEL_TYPES:
        raise ValueError(f"{folder}/config.json: unknown model type {kind!r} (known: {sorted(MODEL_TYPES)})")
    model_class, config_class = MODEL_TYPES[kind]
    config = config_class.from_dict(values)
    model = model_class.from_folder(config, folder) if hasattr(model_class, "from_folder") else model_class(config)
    weights = folder / WEIGHTS_FILE
    try:
        model.load_state_dict(load_file(str(weights)))
    except (OSError, SafetensorError, RuntimeError) as error:  # RuntimeError: weights of another shape
        raise ValueError(f"cannot load the weights {weights}: {error}") from error
    return model.to(device).eval()
