"""Weight transfer from Whisper: the CTranslate2 reader, the PyTorch teacher against CTranslate2's own
encoder, Whisper's mel filters, a streaming student initialised from the teacher, grouped B/C in
the mixer, the layer-wise distillation loss and a training run that aligns a student without text."""

import struct

import numpy as np
import pytest
import torch

from streamssm.audio import read_audio
from streamssm.data.manifest import Utterance, write_manifest
from streamssm.distill.ctranslate2_weights import read_ctranslate2
from streamssm.distill.layers import layer_distillation_loss
from streamssm.features import FeatureConfig, log_mel
from streamssm.models import resolve_model_dir
from streamssm.nn.ssm import CausalMamba2
from test_train_asr import read_log, shortest_train_clips, tiny_config


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<H", len(data) + 1) + data + b"\0"


def _model_bin(version=6, dtype_id=4) -> bytes:
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    body = struct.pack("<I", version) + _string("TestSpec") + struct.pack("<II", 1, 1)
    body += _string("encoder/w") + struct.pack("<B", 2) + struct.pack("<II", 2, 3)
    body += struct.pack("<BI", dtype_id, weight.nbytes) + weight.tobytes()
    return body + struct.pack("<I", 1) + _string("encoder/alias") + _string("encoder/w")


def test_ctranslate2_reader_gives_named_tensors_and_aliases(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(_model_bin())
    tensors = read_ctranslate2(path)
    assert tensors["encoder/w"].dtype == np.float16 and tensors["encoder/w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert tensors["encoder/alias"] is tensors["encoder/w"]
    path.write_bytes(_model_bin(version=5))
    with pytest.raises(ValueError, match="binary version 5"):
        read_ctranslate2(path)
    path.write_bytes(_model_bin(dtype_id=5))
    with pytest.raises(ValueError, match="data type id 5"):
        read_ctranslate2(path)
    path.write_bytes(_model_bin()[:60])
    with pytest.raises(ValueError, match="truncated"):
        read_ctranslate2(path)


def test_slaney_filters_are_whispers():
    fe = pytest.importorskip("faster_whisper.feature_extractor")
    from streamssm.distill.transfer import WHISPER_FEATURES
    from streamssm.features import _analysis

    _, filterbank = _analysis(WHISPER_FEATURES, torch.device("cpu"))
    expected = fe.FeatureExtractor.get_mel_filters(16000, 400, 80)
    assert np.abs(filterbank.numpy().T - expected).max() < 1e-7
    with pytest.raises(ValueError, match="mel_scale"):
        FeatureConfig(mel_scale="bark")


@pytest.mark.parametrize("ngroups", [2, 6])
def test_grouped_mixer_is_exact_whole_chunked_and_stepped(ngroups):
    torch.manual_seed(0)
    layer = CausalMamba2(96, d_state=16, expand=4, headdim=64, ngroups=ngroups, block_size=8).double()
    x = torch.randn(2, 21, 96, dtype=torch.float64)
    whole, state = layer(x)
    first, middle = layer(x[:, :7])
    second, _ = layer(x[:, 7:], middle)
    stepped, step_state = [], layer.initial_state(2, dtype=torch.float64)
    for t in range(21):
        y, step_state = layer.step(x[:, t], step_state)
        stepped.append(y)
    assert torch.allclose(whole, torch.cat([first, second], 1), atol=1e-10)
    assert torch.allclose(whole, torch.stack(stepped, 1), atol=1e-10)
    assert torch.allclose(state.ssm, step_state.ssm, atol=1e-10)
    with pytest.raises(ValueError, match="ngroups = 4"):
        CausalMamba2(96, expand=4, headdim=64, ngroups=4)


def test_layer_loss_compares_student_frame_t_with_teacher_frame_t_minus_delay():
    torch.manual_seed(0)
    teacher = [torch.randn(2, 10, 8) + 3 for _ in range(3)]
    student = [torch.cat([torch.randn(2, 2, 8), t[:, :8]], 1) for t in teacher]
    has_target = torch.ones(2, 10, dtype=torch.bool)
    assert layer_distillation_loss(student, teacher, has_target, delay=2) < 1e-10
    assert layer_distillation_loss(student, teacher, has_target, delay=0) > 1.0
    has_target[1] = False  # row 1 has no teacher: only row 0 counts, averaged over both rows
    student[0][1] = 0.0
    assert layer_distillation_loss(student, teacher, has_target, delay=2) < 1e-10


@pytest.fixture(scope="module")
def whisper():
    pytest.importorskip("faster_whisper")
    from streamssm.distill.transfer import whisper_tensors

    return whisper_tensors("whisper-tiny.en")


@pytest.fixture(scope="module")
def clip_audio(shared_data):
    return read_audio(shortest_train_clips(1)[0].audio, 16000)


def test_pytorch_teacher_equals_ctranslate2s_encoder(whisper, clip_audio):
    import ctranslate2
    import faster_whisper

    from streamssm.distill.teachers import TEACHER_DIRS, TEACHER_FRAMES_PER_STUDENT_FRAME
    from streamssm.distill.transfer import WhisperEncoder

    model = faster_whisper.WhisperModel(str(TEACHER_DIRS["whisper-tiny.en"]()), device="cpu", compute_type="float32")
    mel = model.feature_extractor(clip_audio, padding=0)
    mel = np.ascontiguousarray(mel[None, :, : mel.shape[1] // 2 * 2])
    reference = np.array(model.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True))[0]
    usable = reference.shape[0] // TEACHER_FRAMES_PER_STUDENT_FRAME * TEACHER_FRAMES_PER_STUDENT_FRAME
    reference = reference[:usable].reshape(-1, TEACHER_FRAMES_PER_STUDENT_FRAME, reference.shape[1]).mean(1)
    states = WhisperEncoder(whisper)(torch.from_numpy(mel).transpose(1, 2))
    assert len(states) == 6  # stem, 4 layers, final norm
    assert np.abs(states[-1][0].numpy() - reference).max() < 2e-3 * np.abs(reference).max()


def test_teacher_moves_with_to_as_a_whole(whisper, clip_audio):
    """Every weight of the PyTorch teacher follows .to() (LayerTargets puts it on the training device):
    in float64 it computes in float64 and gives the float32 states."""
    from streamssm.distill.transfer import WHISPER_FEATURES, WhisperEncoder, whisper_input

    teacher = WhisperEncoder(whisper)
    mel = whisper_input(log_mel(clip_audio, WHISPER_FEATURES)[None, :64])
    single, double = teacher(mel), teacher.to(torch.float64)(mel.double())
    assert {b.dtype for b in teacher.buffers()} == {torch.float64}
    assert all(d.dtype == torch.float64 and torch.allclose(d.float(), s, atol=1e-3) for s, d in zip(single, double))


def test_transferred_student_streams_exactly_and_starts_near_the_teacher(whisper, clip_audio):
    from streamssm.distill.transfer import WHISPER_FEATURES, WhisperEncoder, student_config, transfer, whisper_input
    from streamssm.nn.encoder import MambaEncoder

    student = transfer(MambaEncoder(student_config(whisper)), whisper).eval()
    features = log_mel(clip_audio, WHISPER_FEATURES)[None, :64]
    with torch.no_grad():
        whole, _, hidden = student.forward_hidden(features)
        state, chunks = None, []
        for start in range(0, 64, 8):
            y, state = student(features[:, start : start + 8], state)
            chunks.append(y)
        state, steps = student.initial_state(1), []
        for start in range(0, 64, 4):
            y, state = student.step(features[:, start : start + 4], state)
            steps.append(y)
    assert torch.allclose(whole, torch.cat(chunks, 1), atol=1e-4)
    assert torch.allclose(whole, torch.stack(steps, 1), atol=1e-4)
    teacher = WhisperEncoder(whisper)(whisper_input(features))
    assert len(hidden) + 1 == len(teacher)
    # the transferred stem (causal, one mean offset for the positions) is near the teacher's first state
    torch.manual_seed(0)
    untrained = MambaEncoder(student_config(whisper)).eval()
    for encoder, low, high in ((student, 0.7, 1.0), (untrained, -0.5, 0.5)):
        with torch.no_grad():
            first = encoder.forward_hidden(features)[2][0]
        similarity = torch.nn.functional.cosine_similarity(first[0, 2:], teacher[0][0, 2:], dim=-1).mean()
        assert low < similarity < high


@pytest.fixture(scope="module")
def encoder_npz(tmp_path_factory, whisper):
    """The teacher's encoder as `python -m streamssm.distill encoder-tensors` writes it."""
    from streamssm.distill.__main__ import main

    path = tmp_path_factory.mktemp("teacher") / "whisper-tiny.en.npz"
    main(["encoder-tensors", str(path)])
    return path


def test_encoder_tensors_file_holds_the_encoder_as_stored(encoder_npz, whisper):
    from streamssm.distill.transfer import whisper_tensors

    stored = whisper_tensors(str(encoder_npz))
    encoder = {name: values for name, values in whisper.items() if name.startswith("encoder/")}
    assert stored.keys() == encoder.keys() and len(encoder) < len(whisper)
    assert all(
        stored[name].dtype == values.dtype and np.array_equal(stored[name], values) for name, values in encoder.items()
    )


def test_alignment_run_trains_a_whisper_student_without_transcripts(tmp_path, shared_data, encoder_npz):
    """From the teacher's encoder file alone (how a run travels to a machine without its package)."""
    from streamssm.models import load_model
    from streamssm.train.asr import ASRTrainConfig, train

    clips = shortest_train_clips(8)
    untranscribed = [Utterance(audio=c.audio, text=None, duration=c.duration) for c in clips[:4]]
    manifest = tmp_path / "clips.jsonl"
    write_manifest(manifest, untranscribed + clips[4:])
    options = dict(transfer_from=str(encoder_npz), teacher=str(encoder_npz), layer_distill_weight=1.0)
    with pytest.raises(ValueError, match="nothing to train"):
        ASRTrainConfig(text_weight=0.0)
    config = tiny_config(
        tmp_path, shared_data, steps=2, text_weight=0.0, spec_augment=False, validate_every=0, **options
    )
    config.manifests = [str(manifest)]
    train(config)
    log = [row for row in read_log(tmp_path) if "loss" in row]
    assert len(log) == 2 and all(0 < row["distill"] < 1e4 and row["ctc"] == 0 for row in log)
    model = load_model(tmp_path / "model")
    assert model.config.encoder.stem == "whisper" and model.config.features.mel_scale == "slaney"
    assert len(read_manifest_lines(tmp_path / "run" / "train.jsonl")) == 8  # the untranscribed clips too


def read_manifest_lines(path):
    return path.read_text().splitlines()


def test_whisper_stem_keeps_each_rows_state_in_a_padded_batch():
    from asr_helpers import TINY_WHISPER_ENCODER
    from streamssm.nn.encoder import EncoderConfig, MambaEncoder

    torch.manual_seed(0)
    encoder = MambaEncoder(EncoderConfig(**TINY_WHISPER_ENCODER)).eval()
    features = torch.randn(2, 40, 80)
    with torch.no_grad():
        _, batched = encoder(features, lengths=torch.tensor([10, 6]))
        for row, frames in enumerate((10, 6)):
            _, alone = encoder(features[row : row + 1, : frames * 4])
            for got, expected in zip(batched.tensors(), alone.tensors()):
                assert torch.allclose(got[row : row + 1], expected, atol=1e-5)


def test_student_without_transfer_weights_has_the_shape_and_front_end_only(whisper):
    """The from-scratch arm of the ablation: the same student and scaling, none of the teacher's weights."""
    from streamssm.distill.transfer import WHISPER_OFFSET, WHISPER_SCALE
    from streamssm.tokenizer import Tokenizer
    from streamssm.train.asr import ASRTrainConfig, transferred_model

    tokenizer = Tokenizer.load(resolve_model_dir("asr") / "tokenizer.model")
    torch.manual_seed(0)
    copied, fresh = (
        transferred_model(ASRTrainConfig(transfer_from="whisper-tiny.en", transfer_weights=weights), tokenizer)
        for weights in (True, False)
    )
    assert copied.config == fresh.config and fresh.config.encoder.stem == "whisper"
    for encoder in (copied.encoder, fresh.encoder):
        assert torch.all(encoder.feature_mean == WHISPER_OFFSET) and torch.all(encoder.feature_std == WHISPER_SCALE)
    teacher_fc1 = torch.from_numpy(whisper["encoder/layer_0/ffn/linear_0/weight"].astype(np.float32))
    assert torch.equal(copied.encoder.blocks[0].mlp.fc1.weight, teacher_fc1)
    assert not torch.allclose(fresh.encoder.blocks[0].mlp.fc1.weight, teacher_fc1, atol=1e-2)
