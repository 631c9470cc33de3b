"""Augmentation keeps length, hits the requested SNR, is seeded; the real-data split is fixed and disjoint."""

import numpy as np
import torch

from streamssm.audio import read_audio
from streamssm.data.augment import (
    Augmenter,
    change_speed,
    mix_at_snr,
    room_impulse_response,
    shift_pitch,
    spec_augment,
    telephone_band,
    time_stretch,
)
from streamssm.data.splits import real_split


def test_mix_hits_the_requested_snr(shared_data):
    speech = read_audio(shared_data / "asr" / "ljs-reread" / "LJ001-0002.flac")
    noise = read_audio(shared_data / "noise" / "speech-commands" / "running_tap.flac")[: len(speech)]
    for snr in (0.0, 7.5, 20.0):
        mixed = mix_at_snr(speech, noise, snr)
        added = mixed - speech
        measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(added.astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.5, (snr, measured)


def test_augmenter_keeps_length_and_is_seeded(shared_data):
    speech = read_audio(shared_data / "asr" / "ljs-reread" / "LJ001-0002.flac")
    first = [Augmenter(noise_dir=shared_data / "noise", seed=3)(speech) for _ in range(2)]
    assert np.array_equal(first[0], first[1])
    augment = Augmenter(noise_dir=shared_data / "noise", seed=4, p_noise=1, p_reverb=1, p_telephone=1)
    out = augment(speech)
    assert out.shape == speech.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert not np.array_equal(out, speech)
    assert len(telephone_band(speech)) == len(speech)


def peak_hz(audio):
    return np.argmax(np.abs(np.fft.rfft(audio * np.hanning(len(audio))))) * 16000 / len(audio)


def test_speed_perturbation_changes_length_and_pitch_together():
    tone = np.sin(2 * np.pi * 200 * np.arange(32000) / 16000).astype(np.float32)
    faster = change_speed(tone, 1.25)
    assert abs(len(faster) - 32000 / 1.25) <= 1 and abs(peak_hz(faster) - 250) < 3
    augment = Augmenter(seed=0, p_speed=1, speed=(0.8, 0.8), p_reverb=0, p_telephone=0, gain_db=(0, 0))
    assert abs(len(augment(tone)) - 32000 / 0.8) <= 1


def test_pitch_shift_keeps_length():
    tone = np.sin(2 * np.pi * 200 * np.arange(32000) / 16000).astype(np.float32)
    higher = shift_pitch(tone, 1.1)
    assert len(higher) == len(tone) and abs(peak_hz(higher) - 220) < 3
    slower = time_stretch(tone, 40000)
    assert len(slower) == 40000 and abs(peak_hz(slower) - 200) < 3
    augment = Augmenter(seed=0, p_pitch=1, p_reverb=0, p_telephone=0)
    assert len(augment(tone)) == len(tone)


def test_telephone_band_removes_energy_above_4khz(shared_data):
    speech = read_audio(shared_data / "asr" / "ljs-reread" / "LJ001-0002.flac")
    spectrum = np.abs(np.fft.rfft(telephone_band(speech))) ** 2
    freqs = np.fft.rfftfreq(len(speech), 1 / 16000)
    assert spectrum[freqs > 4200].sum() < 1e-3 * spectrum.sum()


def test_room_response_decays():
    response = room_impulse_response(np.random.default_rng(0), rt60_s=0.5, direct_ratio_db=6)
    assert response[0] == 1.0 and len(response) == 8000
    assert np.abs(response[-800:]).max() < np.abs(response[40:840]).max()


def test_spec_augment_masks_bands_without_touching_the_input():
    features = torch.ones(100, 80)
    masked = spec_augment(features, np.random.default_rng(0), time_width=20, freq_width=20)
    assert features.eq(1).all() and masked.shape == features.shape
    assert masked.eq(0).any()


def test_real_split_is_fixed_and_disjoint(shared_data):
    for name in ("wwb", "precise", "fsdd", "ljs-reread"):
        parts = real_split(name)
        train, held_out = {u.audio for u in parts["train"]}, {u.audio for u in parts["eval"]}
        assert train and held_out and not train & held_out
        assert 0.2 < len(held_out) / (len(train) + len(held_out)) < 0.4
        assert parts == real_split(name)
    fsdd = real_split("fsdd")
    assert {u.speaker for u in fsdd["eval"]} == {"lucas"} and "lucas" not in {u.speaker for u in fsdd["train"]}
