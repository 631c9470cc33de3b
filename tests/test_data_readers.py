"""The LibriSpeech and Speech Commands readers on tiny fixtures, and their errors naming the culprit."""

import numpy as np
import pytest
import soundfile

from streamssm.data.manifest import ManifestError, read_manifest, write_manifest
from streamssm.data.readers import read_corpus, read_librispeech, read_speech_commands


def tone(path, seconds, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 0.1 * np.sin(np.arange(int(seconds * rate)) / 5).astype(np.float32), rate)


def librispeech(root):
    chapter = root / "dev-clean" / "19" / "198"
    tone(chapter / "19-198-0000.flac", 1.5)
    tone(chapter / "19-198-0001.flac", 0.5)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO THERE WORLD\n19-198-0001 YES\n")
    return chapter


def test_librispeech_layout(tmp_path):
    chapter = librispeech(tmp_path)
    utterances = read_librispeech(tmp_path)
    assert [(u.text, u.speaker, u.split, round(u.duration, 2)) for u in utterances] == [
        ("hello there world", "19", "dev-clean", 1.5),
        ("yes", "19", "dev-clean", 0.5),
    ]
    assert utterances[0].audio == (chapter / "19-198-0000.flac").resolve()
    write_manifest(tmp_path / "m.jsonl", utterances)
    assert read_corpus(tmp_path / "m.jsonl") == read_corpus(tmp_path) == utterances


def test_speech_commands_layout(tmp_path):
    tone(tmp_path / "yes" / "a1b2_nohash_0.wav", 1.0)
    tone(tmp_path / "yes" / "c3d4_nohash_1.wav", 1.0)
    tone(tmp_path / "no" / "a1b2_nohash_0.wav", 0.9)
    tone(tmp_path / "_background_noise_" / "noise.wav", 3.0)
    (tmp_path / "validation_list.txt").write_text("no/a1b2_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("yes/c3d4_nohash_1.wav\n")
    utterances = read_corpus(tmp_path)
    assert [(u.audio.parent.name, u.keyword, u.text, u.speaker, u.split) for u in utterances] == [
        ("no", "no", "no", "a1b2", "validation"),
        ("yes", "yes", "yes", "a1b2", "train"),
        ("yes", "yes", "yes", "c3d4", "test"),
    ]
    assert abs(utterances[0].duration - 0.9) < 1e-3
    write_manifest(tmp_path / "m.jsonl", utterances)
    assert read_manifest(tmp_path / "m.jsonl") == utterances


def test_missing_audio_names_the_transcript_line(tmp_path):
    chapter = librispeech(tmp_path)
    (chapter / "19-198-0001.flac").unlink()
    with pytest.raises(ManifestError, match=r"19-198\.trans\.txt:2: audio file not found: .*19-198-0001"):
        read_librispeech(tmp_path)


def test_malformed_transcript_line_is_named(tmp_path):
    chapter = librispeech(tmp_path)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO\nJUSTONEFIELD\n")
    with pytest.raises(ManifestError, match=r"19-198\.trans\.txt:2: expected"):
        read_librispeech(tmp_path)


def test_unreadable_audio_is_named(tmp_path):
    tone(tmp_path / "yes" / "a_nohash_0.wav", 1.0)
    (tmp_path / "yes" / "b_nohash_0.wav").write_bytes(b"not audio at all")
    with pytest.raises(ManifestError, match=r"unreadable audio .*b_nohash_0\.wav"):
        read_speech_commands(tmp_path)


def test_empty_or_missing_corpus(tmp_path):
    with pytest.raises(ManifestError, match="no word folders"):
        read_corpus(tmp_path)
    with pytest.raises(ManifestError, match="corpus not found"):
        read_corpus(tmp_path / "nowhere")
