"""The exported chunk function (ONNX Runtime) equals the PyTorch path within 1e-4 on random and
real audio, with any chunking, alone and batched; files of other weights are refused; the backend
option and its errors."""

import sys

import numpy as np
import pytest
import torch

from streamssm.audio import read_audio
from streamssm.export import export
from streamssm.features import SUBSAMPLING, FrontEnd
from streamssm.models import KWSConfig, KWSModel, load_model, resolve_model_dir, save_model
from streamssm.nn.encoder import EncoderConfig
from streamssm.recognizer import StreamingRecognizer
from streamssm.runtime import TorchBackend, create_backend
from streamssm.runtime.onnx_backend import OnnxBackend
from asr_helpers import noise_bursts, tiny_asr_model
from stream_helpers import alone_and_batched

TOLERANCE = 1e-4
RATE = 16000


@pytest.fixture(scope="module")
def kws_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = KWSConfig(
        keywords=["alexa", "computer", "yes"],
        default_threshold=0.34,
        refractory_s=0.5,
        encoder=EncoderConfig(d_model=48, n_layers=2, d_state=16, headdim=16, subsampling_channels=48, block_size=16),
    )
    folder = save_model(KWSModel(config), tmp_path_factory.mktemp("model") / "kws")
    export(folder)
    return folder


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory):
    folder = save_model(tiny_asr_model(), tmp_path_factory.mktemp("model") / "asr")
    export(folder)
    return folder


@pytest.fixture(scope="module")
def real_speech(shared_data):
    clips = [
        shared_data / "kws" / "wwb" / "alexa" / "1.flac",
        next((shared_data / "asr" / "ljs-reread").glob("*.flac")),
    ]
    return np.concatenate([read_audio(path) for path in clips])


def random_audio(seconds=6.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)


@torch.no_grad()
def run(backend, model, audio, sizes):
    """The backend's per-frame outputs (T, .) for `audio` fed to one stream in chunks of `sizes`."""
    frontend = FrontEnd(model.config.features, SUBSAMPLING, backend.analysis)
    state, outputs, position = backend.initial_state(), [], 0
    for size in sizes:
        frames = frontend.accept(audio[position : position + size], RATE)
        position += size
        if frames.shape[0]:
            out, state = backend(frames[None], state, torch.tensor([frames.shape[0] // SUBSAMPLING]))
            outputs.append(out[0])
    return torch.cat(outputs)


def chunkings(n):
    """Whole, 160 ms, one encoder frame (640 samples: step.onnx), ragged, and over a block (chunk.onnx in pieces)."""
    rng = np.random.default_rng(1)
    return {
        "whole": [n],
        "160ms": [2560] * (n // 2560 + 1),
        "40ms": [640] * (n // 640 + 1),
        "ragged": list(rng.integers(1, 4000, n // 500)),
        "long": [RATE * 3] * (n // (RATE * 3) + 1),
    }


def both(folder, head):
    model = load_model(folder)
    return model, TorchBackend(model, head), OnnxBackend(model, folder, head)


@pytest.mark.parametrize("head", ["logits", "transducer", "ctc"])
@pytest.mark.parametrize("audio_kind", ["random", "real"])
def test_exported_equals_pytorch_with_any_chunking(kws_dir, asr_dir, real_speech, head, audio_kind):
    model, reference, exported = both(kws_dir if head == "logits" else asr_dir, head)
    audio = random_audio() if audio_kind == "random" else real_speech[: 8 * RATE]
    expected = run(reference, model, audio, [len(audio)])
    for name, sizes in chunkings(len(audio)).items():
        got = run(exported, model, audio, sizes)
        assert got.shape == expected.shape, name
        assert float((got - expected).abs().max()) < TOLERANCE, name


def test_shipped_kws_files_equal_pytorch(real_speech):
    model, reference, exported = both(resolve_model_dir("kws"), "logits")
    audio = real_speech[: 10 * RATE]
    expected = run(reference, model, audio, [len(audio)])
    assert float((run(exported, model, audio, [2560] * (len(audio) // 2560 + 1)) - expected).abs().max()) < TOLERANCE


def test_batched_streams_equal_single_streams(kws_dir, real_speech):
    """Streams of different ages and lengths through decode_streams: the same events as alone, and as torch."""
    audio = real_speech[: 12 * RATE]
    found = {}
    for backend in ("torch", "onnx"):
        rec = StreamingRecognizer.from_pretrained(kws_dir, backend=backend)
        alone, batched = alone_and_batched(rec, audio, [0, 7000, 23000, 23000 + 640 * 3])
        for a, b in zip(alone, batched):
            assert [(e.text, e.end) for e in a] == [(e.text, e.end) for e in b]
            assert np.allclose([e.score for e in a], [e.score for e in b], atol=TOLERANCE)
        found[backend] = alone
    assert any(found["onnx"]), "the low threshold should produce some events on a random model"
    for a, b in zip(found["torch"], found["onnx"]):
        assert [(e.text, e.end) for e in a] == [(e.text, e.end) for e in b]
        assert np.allclose([e.score for e in a], [e.score for e in b], atol=TOLERANCE)


@pytest.mark.parametrize("search", ["transducer", "ctc"])
def test_asr_events_equal_pytorch(asr_dir, search):
    audio = noise_bursts(8.0)
    events = {}
    for backend in ("torch", "onnx"):
        rec = StreamingRecognizer.from_pretrained(asr_dir, backend=backend, search=search)
        alone, batched = alone_and_batched(rec, audio, [0, 9000])
        assert [[(e.kind, e.text, e.end) for e in s] for s in alone] == [
            [(e.kind, e.text, e.end) for e in s] for s in batched
        ]
        events[backend] = [[(e.kind, e.text, e.end) for e in s] for s in alone]
    assert events["torch"] == events["onnx"]


def test_default_backend_and_stale_files(kws_dir, tmp_path):
    assert isinstance(StreamingRecognizer.from_pretrained(kws_dir).backend, OnnxBackend)
    model = load_model(kws_dir)
    retrained = tmp_path / "kws"
    with torch.no_grad():
        model.head.bias += 1.0
    save_model(model, retrained)
    for name in ("step.onnx", "chunk.onnx"):
        (retrained / name).write_bytes((kws_dir / name).read_bytes())
    with pytest.raises(RuntimeError, match="re-export: python -m streamssm.export"):
        StreamingRecognizer.from_pretrained(retrained, backend="onnx")
    with pytest.warns(UserWarning, match="using the torch backend"):
        assert isinstance(StreamingRecognizer.from_pretrained(retrained).backend, TorchBackend)
    (retrained / "step.onnx").unlink()
    assert isinstance(StreamingRecognizer.from_pretrained(retrained).backend, TorchBackend)
    with pytest.raises(ValueError, match="backend must be one of"):
        StreamingRecognizer.from_pretrained(kws_dir, backend="tensorrt")


def test_missing_onnxruntime_says_how_to_install(kws_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "streamssm\[onnx\]"'):
        create_backend("onnx", load_model(kws_dir), kws_dir, "logits", torch.device("cpu"))
    assert isinstance(StreamingRecognizer.from_pretrained(kws_dir).backend, TorchBackend)
