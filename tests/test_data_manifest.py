"""Manifests round-trip and name the file and line of anything they cannot use."""

import pytest

from streamssm.data.manifest import ManifestError, Utterance, read_manifest, write_manifest


def test_round_trip(tmp_path):
    audio = tmp_path / "clips" / "a.flac"
    audio.parent.mkdir()
    audio.write_bytes(b"")
    items = [
        Utterance(
            audio,
            text="hello there",
            duration=1.5,
            speaker="s1",
            sample_rate=16000,
            split="train",
            words=[("hello", 0.1, 0.5), ("there", 0.6, 1.0)],
        ),
        Utterance(audio, keyword="alexa", duration=0.8),
    ]
    write_manifest(tmp_path / "m.jsonl", items)
    assert '"audio": "clips/a.flac"' in (tmp_path / "m.jsonl").read_text()
    assert read_manifest(tmp_path / "m.jsonl") == [
        Utterance(audio.resolve(), **{k: v for k, v in vars(u).items() if k != "audio"}) for u in items
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('{"text": "x", "duration": 1}', "missing or non-string 'audio'"),
        ('{"audio": "a.flac", "duration": 1}', "needs 'text' or 'keyword'"),
        ('{"audio": "a.flac", "text": "x", "duration": -1}', "'duration' must be"),
        ('{"audio": "missing.flac", "text": "x", "duration": 1}', "audio file not found"),
    ],
)
def test_bad_lines_are_named(tmp_path, line, message):
    (tmp_path / "a.flac").write_bytes(b"")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"audio": "a.flac", "text": "ok", "duration": 1}\n' + line + "\n")
    with pytest.raises(ManifestError, match=message) as error:
        read_manifest(manifest)
    assert f"{manifest}:2" in str(error.value)
