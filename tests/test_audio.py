import numpy as np
import pytest
import soundfile
import torch

from streamssm.audio import StreamingResampler, as_mono_float32, check_sample_rate, read_audio


def test_float_int16_int32_and_tensors_convert():
    rng = np.random.default_rng(0)
    ints = rng.integers(-32768, 32768, 1000).astype(np.int16)
    expected = ints.astype(np.float32) / 32768
    assert np.array_equal(as_mono_float32(ints), expected)
    assert np.array_equal(as_mono_float32(ints.astype(np.int32) << 16), expected)
    assert np.array_equal(as_mono_float32(torch.from_numpy(ints)), expected)
    assert np.array_equal(as_mono_float32(expected.astype(np.float64)), expected)
    assert np.array_equal(as_mono_float32(torch.from_numpy(expected)[:, None]), expected)
    assert as_mono_float32(expected) is expected  # no copy for float32 mono


def test_channels_need_downmix():
    stereo = np.stack([np.ones(10, np.float32), np.zeros(10, np.float32)], axis=1)
    with pytest.raises(ValueError, match="2 channels.*downmix=True"):
        as_mono_float32(stereo)
    assert np.array_equal(as_mono_float32(stereo, downmix=True), np.full(10, 0.5, np.float32))
    assert as_mono_float32(stereo[:, :1]).shape == (10,)


@pytest.mark.parametrize(
    "chunk, error, message",
    [
        (np.zeros(4, np.uint8), TypeError, "uint8"),
        (np.zeros(4, np.int8), TypeError, "int8"),
        (np.zeros(4, np.float16), TypeError, "float16"),
        (np.zeros(4, bool), TypeError, "bool"),
        (np.zeros(4, object), TypeError, "object"),
        (torch.zeros(4, dtype=torch.bfloat16), TypeError, "bfloat16"),
        ([0.0, 0.1], TypeError, "list"),
        (np.zeros((4, 1, 1), np.float32), ValueError, r"\(4, 1, 1\)"),
        (np.zeros((4, 0), np.float32), ValueError, r"\(4, 0\)"),
        (np.array([0.0, np.nan], np.float32), ValueError, "NaN or Inf"),
        (np.array([0.0, -np.inf]), ValueError, "NaN or Inf"),
    ],
)
def test_bad_chunks_rejected(chunk, error, message):
    with pytest.raises(error, match=message):
        as_mono_float32(chunk)


def test_empty_chunk():
    assert as_mono_float32(np.zeros(0, np.int16)).shape == (0,)
    assert as_mono_float32(np.zeros((0, 2)), downmix=True).shape == (0,)


def test_check_sample_rate():
    assert check_sample_rate(16000) == 16000
    assert check_sample_rate(44100.0) == 44100
    assert check_sample_rate(np.int64(8000)) == 8000
    for bad in (0, -1, 2.5, float("nan"), True, "16000", None):
        with pytest.raises(ValueError, match="sample rate"):
            check_sample_rate(bad)


@pytest.mark.parametrize("in_rate", [8000, 44100, 48000])
def test_resampler_independent_of_chunking(in_rate):
    rng = np.random.default_rng(in_rate)
    signal = (0.3 * rng.standard_normal(in_rate // 2)).astype(np.float32)
    whole = StreamingResampler(in_rate)
    expected = np.concatenate([whole.process(signal), whole.flush()])
    assert len(expected) == 8000

    one_by_one = StreamingResampler(in_rate)
    single = [one_by_one.process(signal[i : i + 1]) for i in range(len(signal))]
    cuts = np.cumsum(rng.integers(0, 700, 200))
    random = StreamingResampler(in_rate)
    chunked = [random.process(part) for part in np.split(signal, cuts[cuts < len(signal)])]
    for outputs, resampler in ((single, one_by_one), (chunked, random)):
        got = np.concatenate([*outputs, resampler.flush()])
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_resampler_identity_passes_through():
    samples = np.ones(5, np.float32)
    resampler = StreamingResampler(16000, 16000)
    assert resampler.process(samples) is samples
    assert resampler.flush().shape == (0,)


def test_read_audio_resamples_8k_flac(shared_data):
    path = shared_data / "kws" / "fsdd" / "0_george_0.flac"
    native, rate = soundfile.read(path, dtype="float32")
    assert rate == 8000
    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (2 * len(native),)
    assert np.array_equal(read_audio(path, sample_rate=8000), native)


def test_read_audio_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.flac"
    with pytest.raises(FileNotFoundError, match="missing.flac"):
        read_audio(missing)
    garbage = tmp_path / "garbage.wav"
    garbage.write_text("not audio")
    with pytest.raises(OSError, match="garbage.wav"):
        read_audio(garbage)


def test_float_audio_far_outside_the_unit_range_raises():
    as_mono_float32(np.array([0.0, 1.5, -1.2], np.float32))  # a little overshoot is audio
    with pytest.raises(ValueError, match=r"reaches 12000.*\[-1, 1\].*32768"):
        as_mono_float32(np.array([0.0, 12000.0, -3.0], np.float32))


def test_a_channels_first_array_is_named_as_such():
    channels_first = np.zeros((2, 14640), np.float32)
    for downmix in (False, True):
        with pytest.raises(ValueError, match=r"\(2, 14640\).*\(frames, channels\).*chunk\.T"):
            as_mono_float32(channels_first, downmix=downmix)
    assert as_mono_float32(channels_first.T, downmix=True).shape == (14640,)
