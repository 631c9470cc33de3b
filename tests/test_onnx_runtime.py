"""The exported chunk function (ONNX Runtime) equals the PyTorch path within 1e-4 on random and
real audio, with any chunking, alone and batched; files of other weights are refused; the backend
option and its errors. The int8 files (backend "onnx-int8") stay within INT8_TOLERANCE of the
float ones, with any chunking, and hear the same keywords in real clips."""

import re
import shutil
import sys

import numpy as np
import pytest
import torch

from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split
from streamssm.export import export
from streamssm.extras import MissingPiece
from streamssm.features import SUBSAMPLING, FrontEnd
from streamssm.models import KWSConfig, KWSModel, load_model, resolve_model_dir, save_model
from streamssm.nn.encoder import EncoderConfig
from streamssm.recognizer import StreamingRecognizer
from streamssm.runtime import BACKENDS, TorchBackend, create_backend
from streamssm.runtime.graphs import int8_file
from streamssm.runtime.onnx_backend import OnnxBackend
from asr_helpers import TINY_WHISPER_ENCODER, noise_bursts, tiny_asr_model
from stream_helpers import alone_and_batched, events_of

TOLERANCE = 1e-4
# int8 against float, relative to the largest |output|: measured up to 0.041 on the random test models
# and 0.016 on the shipped kws model (real speech); between chunkings of the int8 path: 0.0012
INT8_TOLERANCE, INT8_CHUNKING_TOLERANCE = 0.06, 0.005
INT8_SCORE_TOLERANCE = 0.05  # a keyword event's score (a posterior) on the shipped model; measured: 0.02
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
    export(folder, int8=True)
    return folder


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory):
    folder = save_model(tiny_asr_model(), tmp_path_factory.mktemp("model") / "asr")
    export(folder, int8=True)
    return folder


@pytest.fixture(scope="module")
def whisper_shaped_asr_dir(tmp_path_factory):
    """A tiny model of the weight-transfer student's shape (streamssm/distill/transfer.py)."""
    from streamssm.distill.transfer import WHISPER_FEATURES

    model = tiny_asr_model(encoder=TINY_WHISPER_ENCODER, features=WHISPER_FEATURES)
    folder = save_model(model, tmp_path_factory.mktemp("model") / "asr_whisper")
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
    """Whole, 160 ms, one encoder frame (640 samples), ragged, and over a block (chunk.onnx in pieces)."""
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


def relative_difference(got, expected) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


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


@pytest.mark.parametrize("head", ["transducer", "ctc"])
def test_whisper_shaped_student_exports_exactly(whisper_shaped_asr_dir, real_speech, head):
    model, reference, exported = both(whisper_shaped_asr_dir, head)
    audio = real_speech[: 8 * RATE]
    expected = run(reference, model, audio, [len(audio)])
    for name, sizes in chunkings(len(audio)).items():
        assert float((run(exported, model, audio, sizes) - expected).abs().max()) < TOLERANCE, name


@pytest.mark.parametrize("name, head", [("kws", "logits"), ("asr", "transducer"), ("asr", "ctc")])
def test_shipped_files_equal_pytorch(real_speech, name, head):
    model, reference, exported = both(resolve_model_dir(name), head)
    audio = real_speech[: 10 * RATE]
    expected = run(reference, model, audio, [len(audio)])
    assert float((run(exported, model, audio, [2560] * (len(audio) // 2560 + 1)) - expected).abs().max()) < TOLERANCE


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_files_do_not_copy_the_weights(tmp_path, real_speech, dtype):
    """The files refer to the weights in model.safetensors (stored in float32 or, as the shipped asr
    model's, float16) instead of holding a second copy, and give the same outputs."""
    import onnx

    folder = save_model(tiny_asr_model(), tmp_path / "model", dtype=dtype)
    export(folder)
    weights = onnx.load(str(folder / "chunk.onnx"), load_external_data=False).graph.initializer
    referenced = [w for w in weights if w.data_location == onnx.TensorProto.EXTERNAL]
    assert referenced and {e.value for w in referenced for e in w.external_data if e.key == "location"} == {
        "model.safetensors"
    }
    inline = sum(len(w.raw_data) for w in weights if w.data_location != onnx.TensorProto.EXTERNAL)
    assert inline < (folder / "model.safetensors").stat().st_size / 3  # tensors under MIN_SIZE stay inline
    model, reference, exported = both(folder, "ctc")
    audio = real_speech[: 4 * RATE]
    expected = run(reference, model, audio, [len(audio)])
    assert float((run(exported, model, audio, [2560] * (len(audio) // 2560 + 1)) - expected).abs().max()) < TOLERANCE


def test_batched_streams_equal_single_streams(kws_dir, real_speech):
    """Streams of different ages and lengths through decode_streams: the same events as alone on every
    backend (int8 included: its activations are quantised per row), and onnx as torch."""
    audio = real_speech[: 12 * RATE]
    found = {}
    for backend in BACKENDS:
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
    for backend in BACKENDS:
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
    for name in ("chunk.onnx", int8_file("chunk.onnx")):
        (retrained / name).write_bytes((kws_dir / name).read_bytes())
    with pytest.raises(RuntimeError, match="re-export: python -m streamssm.export"):
        StreamingRecognizer.from_pretrained(retrained, backend="onnx")
    with pytest.raises(
        RuntimeError, match=f"re-export: python -m streamssm.export {re.escape(str(retrained))} --int8$"
    ):
        StreamingRecognizer.from_pretrained(retrained, backend="onnx-int8")
    with pytest.warns(UserWarning, match="using the torch backend"):
        assert isinstance(StreamingRecognizer.from_pretrained(retrained).backend, TorchBackend)
    (retrained / "chunk.onnx").unlink()
    assert isinstance(StreamingRecognizer.from_pretrained(retrained).backend, TorchBackend)
    with pytest.raises(ValueError, match="backend must be one of"):
        StreamingRecognizer.from_pretrained(kws_dir, backend="tensorrt")


def test_missing_onnxruntime_says_how_to_install(kws_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    for backend in ("onnx", "onnx-int8"):
        with pytest.raises(MissingPiece) as missing:
            create_backend(backend, load_model(kws_dir), kws_dir, "logits", torch.device("cpu"))
        assert str(missing.value) == 'onnxruntime is not installed (the onnx extra): pip install "streamssm[onnx]"'
    assert isinstance(StreamingRecognizer.from_pretrained(kws_dir).backend, TorchBackend)


@pytest.mark.parametrize("head", ["logits", "transducer", "ctc"])
def test_int8_stays_close_with_any_chunking(kws_dir, asr_dir, real_speech, head):
    folder = kws_dir if head == "logits" else asr_dir
    model, _, exported = both(folder, head)
    int8 = OnnxBackend(model, folder, head, int8=True)
    audio = real_speech[: 8 * RATE]
    expected, whole = (run(backend, model, audio, [len(audio)]) for backend in (exported, int8))
    assert relative_difference(whole, expected) < INT8_TOLERANCE
    for name, sizes in chunkings(len(audio)).items():
        assert relative_difference(run(int8, model, audio, sizes), whole) < INT8_CHUNKING_TOLERANCE, name


@pytest.fixture(scope="module")
def keyword_clips(shared_data):
    """Held-out real clips of each real keyword set (the first 8 of each), with silence around them."""
    pad = np.zeros(RATE // 2, np.float32)
    return [
        np.concatenate([pad, read_audio(u.audio), pad])
        for name in ("wwb", "precise", "fsdd")
        for u in real_kws_split(name)["eval"][:8]
    ]


def test_shipped_kws_int8_hears_the_same_keywords(keyword_clips):
    """The shipped int8 files: the same keyword events as the float ones on real clips, in 160 ms chunks."""
    found = {}
    for backend in ("onnx", "onnx-int8"):
        rec = StreamingRecognizer.from_pretrained("kws", backend=backend)
        found[backend] = [
            events_of(rec.create_stream(), clip, [2560] * (len(clip) // 2560 + 1)) for clip in keyword_clips
        ]
    assert any(found["onnx"])
    for a, b in zip(found["onnx"], found["onnx-int8"]):
        assert [e.text for e in a] == [e.text for e in b]
        assert np.allclose([e.score for e in a], [e.score for e in b], atol=INT8_SCORE_TOLERANCE)


def test_int8_is_only_taken_when_named(kws_dir, tmp_path):
    assert StreamingRecognizer.from_pretrained(kws_dir).backend.name == "onnx"
    assert StreamingRecognizer.from_pretrained(kws_dir, backend="onnx-int8").backend.name == "onnx-int8"
    float_only = shutil.copytree(kws_dir, tmp_path / "kws")
    (float_only / int8_file("chunk.onnx")).unlink()
    with pytest.raises(FileNotFoundError) as missing:
        StreamingRecognizer.from_pretrained(float_only, backend="onnx-int8")
    assert str(missing.value) == (
        f"{float_only} has no chunk.int8.onnx; export them: python -m streamssm.export {float_only} --int8"
    )
