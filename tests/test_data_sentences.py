"""Sentence corpora: held-out voices read held-out text, word times where the engine gives them, and a
re-run skips finished clips; negative streams are long, keyword-free and noisy."""

import soundfile

from streamssm.data import sentences, streams, voices
from streamssm.data.manifest import read_manifest
from streamssm.data.text import write_text
from streamssm.text import normalize_text

TEXT = {
    "train": ["The cat sat on the mat today.", "A dog ran far away from home.", "Birds sing in the trees."],
    "heldout": ["Rain fell on the quiet town.", "Nobody came to the party late."],
}


def test_corpus_splits_and_resumes(tmp_path):
    write_text(tmp_path / "text", TEXT)
    summary = sentences.generate(tmp_path, train_sentences=3, heldout_sentences=2, workers=1)
    assert summary["train"][0] == 3 and summary["heldout"][0] == 2
    train, heldout = (
        read_manifest(tmp_path / "train" / "manifest.jsonl"),
        read_manifest(tmp_path / "heldout" / "manifest.jsonl"),
    )
    assert {u.text for u in train} == {normalize_text(t) for t in TEXT["train"]}
    assert {u.text for u in heldout} == {normalize_text(t) for t in TEXT["heldout"]}
    train_voices = {tuple(u.speaker.split(":")[:2]) for u in train}
    heldout_voices = {tuple(u.speaker.split(":")[:2]) for u in heldout}
    assert train_voices <= set(voices.sentence_voices("train")) and heldout_voices <= set(
        voices.sentence_voices("heldout")
    )
    for u in train + heldout:
        info = soundfile.info(u.audio)
        assert info.samplerate == 16000 and abs(info.duration - u.duration) < 1e-3
        assert u.words is None or [w for w, _, _ in u.words] == u.text.split()
    assert any(u.words for u in train)  # the first train voices are espeak-ng, which gives word times

    # a re-run writes nothing new; a lost clip is made again
    stamps = {u.audio: u.audio.stat().st_mtime_ns for u in train}
    assert sentences.generate(tmp_path, train_sentences=3, heldout_sentences=2, workers=1) == summary
    assert all(u.audio.stat().st_mtime_ns == stamps[u.audio] for u in train)
    train[0].audio.unlink()
    sentences.generate(tmp_path, train_sentences=3, heldout_sentences=0, workers=1)
    assert train[0].audio.exists()
    assert all(u.audio.stat().st_mtime_ns == stamps[u.audio] for u in train[1:])
    assert read_manifest(tmp_path / "train" / "manifest.jsonl") == train


def test_negative_stream(tmp_path, shared_data):
    write_text(tmp_path / "text", {"train": [], "heldout": TEXT["heldout"] + ["Yes, I will come."]})
    [stream] = streams.generate(
        tmp_path,
        hours=0.25 / 60,
        keywords=["yes", "computer"],
        file_minutes=0.25,
        noise_dir=shared_data / "noise",
        workers=1,
    )
    audio, rate = soundfile.read(stream.audio)
    assert rate == 16000 and len(audio) == 15 * 16000 and stream.duration == 15.0
    assert stream.text and "yes" not in stream.text.split()
    quiet = (audio[: len(audio) // 160 * 160].reshape(-1, 160) ** 2).mean(1)
    assert quiet.min() > 0  # noise runs under the pauses
    assert read_manifest(tmp_path / "heldout" / "manifest.jsonl") == [stream]
