import json
import math

import numpy as np
import pytest
import soundfile
import soxr
import torch
from scipy.signal import get_window

from streamssm.features import FeatureConfig, FrontEnd, log_mel


@pytest.fixture(scope="module")
def speech(shared_data) -> np.ndarray:
    """10 s of a real recording at 16 kHz."""
    path = shared_data / "asr" / "ljs-reread" / "LJ003-0011.flac"
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == 16000
    return samples[: 10 * rate]


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got - expected).abs().max() / expected.abs().max()).item()


def stream(chunks, sample_rate, front_end=None) -> torch.Tensor:
    front_end = front_end or FrontEnd()
    outputs = [front_end.accept(chunk, sample_rate) for chunk in chunks]
    return torch.cat([*outputs, front_end.finish()])


def random_chunks(samples, rng, max_length=3000):
    cuts = np.cumsum(rng.integers(0, max_length, 2 * len(samples) // max_length + 2))
    return np.split(samples, cuts[cuts < len(samples)])


def reference_log_mel(samples, cfg: FeatureConfig) -> np.ndarray:
    """Frame by frame in float64, with the filterbank built by explicit loops."""
    mel = lambda hz: 2595.0 * math.log10(1.0 + hz / 700.0)  # noqa: E731  (HTK)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    step = (mel(cfg.f_max) - mel(cfg.f_min)) / (cfg.n_mels + 1)
    points = [hz(mel(cfg.f_min) + i * step) for i in range(cfg.n_mels + 2)]
    n_bins = cfg.n_fft // 2 + 1
    filters = np.zeros((cfg.n_mels, n_bins))
    for m in range(cfg.n_mels):
        left, centre, right = points[m : m + 3]
        for k in range(n_bins):
            f = k * cfg.sample_rate / cfg.n_fft
            if left < f <= centre:
                filters[m, k] = (f - left) / (centre - left)
            elif centre < f < right:
                filters[m, k] = (right - f) / (right - centre)
    window = get_window("hann", cfg.win_length, fftbins=True)  # periodic
    frames = []
    start = 0
    while start + cfg.win_length <= len(samples):
        padded = np.zeros(cfg.n_fft)
        padded[: cfg.win_length] = samples[start : start + cfg.win_length] * window
        power = np.abs(np.fft.rfft(padded)) ** 2
        frames.append(np.log(filters @ power + cfg.log_floor))
        start += cfg.hop_length
    return np.array(frames).reshape(-1, cfg.n_mels)


@pytest.mark.parametrize("peak", [None, 1.0])
def test_log_mel_matches_naive_reference(speech, peak):
    cfg = FeatureConfig()
    samples = speech[: 3 * 16000].astype(np.float64)
    if peak is not None:  # loud frames are the hardest for quiet bins
        samples = (samples * (peak / np.abs(samples).max())).astype(np.float32)
    expected = reference_log_mel(samples, cfg)
    got = log_mel(samples)
    assert got.dtype == torch.float32 and got.shape == expected.shape == (298, 80)
    error = np.abs(got.numpy() - expected).max()
    print(f"log_mel vs float64 reference: max abs error {error:.2e}")
    assert error <= 1e-4


@pytest.mark.parametrize("n, frames", [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98)])
def test_log_mel_frame_count(n, frames):
    assert log_mel(np.zeros(n, np.float32)).shape == (frames, 80)


def test_log_mel_batched_and_tensor_input():
    batch = torch.randn(3, 2000) * 0.1
    got = log_mel(batch)
    assert got.shape == (3, 11, 80)
    assert torch.allclose(got[1], log_mel(batch[1].numpy()), rtol=0, atol=1e-5)


def test_config_round_trips_through_json():
    cfg = FeatureConfig(n_mels=40, f_max=8000.0)
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        FeatureConfig(f_max=9000.0)


def test_single_sample_chunks_equal_whole_pass(speech):
    whole = stream([speech], 16000)
    one_by_one = stream(speech[:, None], 16000)  # 160000 chunks of one sample
    error = relative_error(one_by_one, whole)
    print(f"16 kHz, 1-sample chunks vs whole: max relative error {error:.2e}")
    assert one_by_one.shape == whole.shape == (1000, 80)
    assert error <= 1e-5
    assert torch.equal(whole[:996], FrontEnd().accept(speech, 16000))
    offline_error = relative_error(whole[:996], log_mel(speech)[:996])
    print(f"16 kHz, stream vs log_mel(whole): max relative error {offline_error:.2e}")
    assert offline_error <= 1e-5


@pytest.mark.parametrize("rate", [48000, 44100, 8000])
def test_random_chunks_equal_whole_pass_after_resampling(speech, rate):
    signal = soxr.resample(speech, 16000, rate).astype(np.float32)
    whole = stream([signal], rate)
    chunked = stream(random_chunks(signal, np.random.default_rng(rate)), rate)
    error = relative_error(chunked, whole)
    print(f"{rate} Hz, random chunks vs whole: max relative error {error:.2e}")
    assert chunked.shape == whole.shape and len(whole) % 4 == 0
    assert error <= 1e-5


def test_int16_equals_float_over_32768():
    ints = np.random.default_rng(1).integers(-8000, 8000, 5000).astype(np.int16)
    assert torch.equal(stream([ints], 16000), stream([ints.astype(np.float32) / 32768], 16000))


def test_downmix():
    stereo = (0.1 * np.random.default_rng(2).standard_normal((3000, 2))).astype(np.float32)
    with pytest.raises(ValueError, match="2 channels.*downmix=True"):
        FrontEnd().accept(stereo, 16000)
    front_end = FrontEnd()
    frames = front_end.accept(stereo, 16000, downmix=True)
    assert torch.equal(frames, FrontEnd().accept(stereo.mean(axis=1), 16000))


def snapshot(front_end: FrontEnd):
    return (
        front_end._buffer.copy(),
        front_end._fill,
        front_end.frames_emitted,
        front_end.samples_received,
        front_end.sample_rate,
    )


def assert_same_state(a: FrontEnd, b: FrontEnd):
    (buffer_a, *rest_a), (buffer_b, *rest_b) = snapshot(a), snapshot(b)
    assert np.array_equal(buffer_a, buffer_b) and rest_a == rest_b


@pytest.mark.parametrize(
    "chunk, rate, error, message",
    [
        (np.array([0.1, np.nan], np.float32), 48000, ValueError, "NaN or Inf"),
        (np.array([np.inf, 0.1]), 48000, ValueError, "NaN or Inf"),
        (np.zeros(10, np.uint8), 48000, TypeError, "uint8"),
        (np.zeros((10, 2), np.float32), 48000, ValueError, "2 channels"),
        (np.zeros(10, np.float32), 0, ValueError, "sample rate"),
        (np.zeros(10, np.float32), -1, ValueError, "sample rate"),
        (np.zeros(10, np.float32), 2.5, ValueError, "sample rate"),
        (np.zeros(10, np.float32), 16000, ValueError, "sample rate changed from 48000"),
    ],
)
def test_rejected_chunk_leaves_state_untouched(chunk, rate, error, message):
    rng = np.random.default_rng(3)
    first, second = (0.1 * rng.standard_normal((2, 4321))).astype(np.float32)
    clean, rejected = FrontEnd(), FrontEnd()
    for front_end in (clean, rejected):
        front_end.accept(first, 48000)
    with pytest.raises(error, match=message):
        rejected.accept(chunk, rate)
    assert_same_state(rejected, clean)
    assert torch.equal(rejected.accept(second, 48000), clean.accept(second, 48000))
    assert_same_state(rejected, clean)
    assert torch.equal(rejected.finish(), clean.finish())


def test_empty_chunk_is_a_no_op():
    front_end, reference = FrontEnd(), FrontEnd()
    assert front_end.accept(np.zeros(0, np.float32), 8000).shape == (0, 80)
    assert front_end.sample_rate is None  # an empty chunk does not fix the rate
    samples = np.random.default_rng(4).standard_normal(1234).astype(np.float32) * 0.1
    assert torch.equal(front_end.accept(samples, 16000), reference.accept(samples, 16000))
    assert front_end.accept(np.zeros((0, 1), np.int16), 16000).shape == (0, 80)
    assert_same_state(front_end, reference)


def test_nbytes_constant_and_frames_in_groups():
    rng = np.random.default_rng(5)
    front_end = FrontEnd()
    nbytes = front_end.nbytes
    total_frames = total_samples = 0
    for _ in range(300):
        chunk = (0.1 * rng.standard_normal(rng.integers(0, 3000))).astype(np.float32)
        frames = front_end.accept(chunk, 44100)
        total_frames, total_samples = total_frames + len(frames), total_samples + len(chunk)
        assert len(frames) % 4 == 0 and front_end.nbytes == nbytes
    assert front_end.frames_emitted == total_frames
    assert front_end.samples_received == total_samples
    assert len(front_end.finish()) % 4 == 0 and front_end.nbytes == nbytes


def test_finish_pads_tail_to_a_full_group():
    samples = (0.1 * np.random.default_rng(6).standard_normal(1000)).astype(np.float32)
    front_end = FrontEnd()
    assert len(front_end.accept(samples, 16000)) == 4  # 640 samples consumed, 360 carried
    tail = front_end.finish()
    padded = np.concatenate([samples, np.zeros(520, np.float32)])  # 8 frames end at sample 1520
    assert torch.equal(tail, log_mel(padded)[4:8])
    assert front_end.finish().shape == (0, 80)
    with pytest.raises(RuntimeError, match="finish"):
        front_end.accept(samples, 16000)


def test_finish_adds_nothing_when_every_sample_is_framed():
    front_end = FrontEnd()
    assert len(front_end.accept(np.zeros(880, np.float32), 16000)) == 4
    assert front_end.finish().shape == (0, 80)
    assert FrontEnd().finish().shape == (0, 80)
