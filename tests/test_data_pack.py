"""The training pack: train parts only, text and durations kept, audio still the same speech, small."""

import shutil

import numpy as np
import pytest

from streamssm.audio import SAMPLE_RATE, read_audio
from streamssm.data.manifest import read_manifest
from streamssm.data.pack import main, opus_level, pack
from streamssm.data.splits import real_split


def test_pack_keeps_train_clips_text_and_speech(tmp_path, shared_data):
    noise = tmp_path / "noise"
    noise.mkdir()
    for source in sorted((shared_data / "noise").rglob("*.flac"))[:2]:
        shutil.copy(source, noise)
    counts = pack(["ljs-reread"], tmp_path / "pack", kbps=14, noise_dir=noise, limit=3)
    originals, packed = real_split("ljs-reread")["train"][:3], read_manifest(tmp_path / "pack" / "manifest.jsonl")
    assert counts["utterances"] == 3 and counts["noise_files"] == 2
    assert len(list((tmp_path / "pack" / "noise").glob("*.ogg"))) == 2
    assert not {u.audio for u in packed} & {u.audio for u in real_split("ljs-reread")["eval"]}
    for original, copy in zip(originals, packed):
        assert copy.text == original.text and copy.audio.suffix == ".ogg"
        source, decoded = read_audio(original.audio), read_audio(copy.audio)
        assert abs(len(decoded) - len(source)) < 0.02 * SAMPLE_RATE
        assert copy.duration == pytest.approx(len(source) / SAMPLE_RATE, abs=1e-3)
        n = min(len(source), len(decoded))
        assert np.corrcoef(source[:n], decoded[:n])[0, 1] > 0.9  # the same waveform, lightly coded
        assert copy.audio.stat().st_size * 8 / copy.duration < 2 * 14_000  # near 14 kbit/s (Ogg pages add some)


def test_pack_refuses_a_used_folder_and_a_bad_bitrate(tmp_path, shared_data):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(SystemExit, match="not empty"):
        main(["ljs-reread", "--limit", "1", "--out", str(tmp_path / "used")])
    with pytest.raises(ValueError, match="kbps"):
        opus_level(2)
    assert opus_level(256) == 0 and opus_level(6) == 1


def test_pack_stops_below_its_size_with_every_source(tmp_path, shared_data):
    """--max-mib: the sources are packed in turn, so the pack that stops below the size holds some of each."""
    counts = pack(["ljs-reread", "vctk-p239"], tmp_path / "pack", kbps=14, limit=20, max_bytes=60_000)
    packed = read_manifest(tmp_path / "pack" / "manifest.jsonl")
    assert 2 <= counts["utterances"] == len(packed) < 40 and counts["bytes"] <= 60_000
    assert {u.text for u in packed} & {u.text for u in real_split("ljs-reread")["train"]}
    assert {u.text for u in packed} & {u.text for u in real_split("vctk-p239")["train"]}
    assert sorted(p.name for p in (tmp_path / "pack" / "audio").iterdir()) == sorted(u.audio.name for u in packed)
