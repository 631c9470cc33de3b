"""The whole stack (resampler -> log-mel -> encoder) gives the same outputs however audio is chunked,
and runs an hour-long stream in constant memory, close to a float64 run."""

import resource

import numpy as np
import pytest
import torch

from streamssm.audio import read_audio
from streamssm.features import FrontEnd
from streamssm.nn.encoder import EncoderConfig, MambaEncoder

CONFIG = EncoderConfig(d_model=96, n_layers=3, d_state=32, headdim=32, subsampling_channels=96, block_size=32)


def relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def speech_10s(shared_data):
    """10 s of real speech (concatenated reader utterances), 16 kHz."""
    folder = shared_data / "asr" / "ljs-reread"
    audio = np.concatenate([read_audio(folder / f"LJ001-000{i}.flac") for i in (1, 2, 3)])
    assert audio.size >= 160_000
    return audio[:160_000]


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return MambaEncoder(CONFIG).eval()


@torch.no_grad()
def run_stream(encoder, audio, sample_rate, chunk_sizes):
    frontend, state, outputs = FrontEnd(), None, []
    position = 0
    for size in chunk_sizes:
        frames = frontend.accept(audio[position : position + size], sample_rate)
        position += size
        if frames.shape[0]:
            out, state = encoder(frames[None], state)
            outputs.append(out[0])
    assert position >= len(audio)
    return torch.cat(outputs)


@pytest.mark.parametrize("sample_rate", [16000, 48000])
def test_any_chunking_equals_the_whole_pass(encoder, speech_10s, sample_rate):
    import soxr

    audio = speech_10s if sample_rate == 16000 else soxr.resample(speech_10s, 16000, sample_rate).astype(np.float32)
    whole = run_stream(encoder, audio, sample_rate, [len(audio)])
    assert whole.shape[0] >= 245  # 10 s of 40 ms frames, less the first window and resampler delay
    rng = np.random.default_rng(0)
    chunkings = {
        f"{ms} ms": [sample_rate * ms // 1000] * (len(audio) * 1000 // (sample_rate * ms) + 1)
        for ms in (1, 3, 7, 16, 160)
    }
    chunkings["random"] = list(rng.integers(1, sample_rate // 2, size=len(audio)))
    worst = 0.0
    for name, sizes in chunkings.items():
        err = relative_error(run_stream(encoder, audio, sample_rate, sizes), whole)
        print(f"{sample_rate} Hz, {name} chunks: max relative error {err:.2e}")
        worst = max(worst, err)
    assert worst <= 1e-4


@torch.no_grad()
def test_frame_by_frame_stepping_equals_the_whole_pass(encoder, speech_10s):
    frames = FrontEnd().accept(speech_10s, 16000)
    whole, _ = encoder(frames[None])
    state, steps = encoder.initial_state(1), []
    for start in range(0, frames.shape[0], 4):
        out, state = encoder.step(frames[None, start : start + 4], state)
        steps.append(out)
    err = relative_error(torch.stack(steps, 1), whole)
    print(f"stepping: max relative error {err:.2e}")
    assert err <= 1e-4


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@torch.no_grad()
def test_one_hour_stream_is_finite_constant_size_and_close_to_float64(speech_10s):
    torch.manual_seed(1)
    small = EncoderConfig(d_model=48, n_layers=2, d_state=16, headdim=16, subsampling_channels=48)
    encoder32 = MambaEncoder(small).eval()
    encoder64 = MambaEncoder(small).double().eval()
    encoder64.load_state_dict(encoder32.state_dict())
    frontend = FrontEnd()
    state32, state64 = encoder32.initial_state(1), encoder64.initial_state(1)
    size = state32.nbytes
    rng = np.random.default_rng(0)
    rss_after_warmup = None
    for chunk_index in range(360):  # 360 chunks of 10 s = 1 hour
        chunk = speech_10s * rng.uniform(0.1, 2.0) + rng.normal(0, 0.003, speech_10s.size).astype(np.float32)
        frames = frontend.accept(np.clip(chunk, -1, 1), 16000)
        out32, state32 = encoder32(frames[None], state32)
        out64, state64 = encoder64(frames[None].double(), state64)
        assert state32.nbytes == size
        assert torch.isfinite(out32).all()
        if chunk_index == 30:
            rss_after_warmup = rss_mb()
    err = relative_error(out32.double(), out64)
    state_err = max(relative_error(a.double(), b) for a, b in zip(state32.tensors(), state64.tensors()))
    growth = rss_mb() - rss_after_warmup
    print(
        f"1 h stream: last-chunk output error vs float64 {err:.2e}, state error {state_err:.2e}, "
        f"state {size} bytes, RSS growth after warm-up {growth:.1f} MB"
    )
    assert err <= 1e-3 and state_err <= 1e-3
    assert growth < 16
