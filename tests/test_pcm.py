"""Raw PCM bytes of every width the servers take, and the errors bytes that make no samples raise."""

import numpy as np
import pytest

from streamssm.audio import as_mono_float32
from streamssm.pcm import pcm_to_array


@pytest.mark.parametrize(
    "width, data, values",
    [
        (1, bytes([0, 128, 255]), [-32768, 0, 32512]),  # unsigned, widened to int16
        (2, np.array([-32768, -1, 0, 32767], "<i2").tobytes(), [-32768, -1, 0, 32767]),
        (3, b"\x00\x00\x80\xff\xff\xff\x05\x00\x00\xff\xff\x7f", [-(2**31), -256, 5 << 8, (2**23 - 1) << 8]),
        (4, np.array([-(2**31), 7, 2**31 - 1], "<i4").tobytes(), [-(2**31), 7, 2**31 - 1]),
    ],
)
def test_integer_widths(width, data, values):
    samples = pcm_to_array(data, width)
    assert samples.shape == (len(values), 1) and samples.ravel().tolist() == values
    assert np.abs(as_mono_float32(samples)).max() <= 1.0


def test_float_and_channels():
    frames = np.array([[0.5, -0.5], [0.25, 0.75]], np.float32)
    assert np.array_equal(pcm_to_array(frames.tobytes(), 4, 2, floating=True), frames)
    assert np.allclose(as_mono_float32(pcm_to_array(frames.tobytes(), 4, 2, floating=True), downmix=True), [0, 0.5])


@pytest.mark.parametrize(
    "data, width, channels, floating, message",
    [
        (b"\0" * 3, 2, 1, False, "3 bytes is not a whole number of 2-byte samples x 1 channel"),
        (b"\0" * 6, 2, 2, False, "6 bytes is not a whole number of 2-byte samples x 2 channel"),
        (b"\0" * 4, 5, 1, False, "sample width must be one of"),
        (b"\0" * 4, 2, 1, True, "float PCM must have 4-byte samples"),
        (b"\0" * 4, 2, 0, False, "channel count must be a positive integer"),
    ],
)
def test_bytes_that_make_no_samples_are_refused(data, width, channels, floating, message):
    with pytest.raises(ValueError, match=message):
        pcm_to_array(data, width, channels, floating=floating)
