"""python -m streamssm.eval asr: scoring after normalisation, the speech-span rule, when the text
settles, the report of a tiny random model over a tiny manifest (streaming and offline agree), bad
input, the named sets."""

import json

import numpy as np
import pytest
import soundfile

from streamssm.eval import __main__ as eval_cli
from streamssm.eval import asr
from streamssm.events import Event
from streamssm.eval.sets import ASTERISK_SOUNDS, LIBRIVOX, asterisk_prompts, librivox_utterances, speech_set
from streamssm.models import save_model
from streamssm.recognizer import StreamingRecognizer
from asr_helpers import TEXTS, noise_bursts, tiny_asr_model

RATE = 16000


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_set", numbered=False)
    with open(folder / "manifest.jsonl", "w") as lines:
        for i, seconds in enumerate((2.5, 4.0)):
            audio = noise_bursts(seconds, seed=i)
            soundfile.write(folder / f"u{i}.wav", audio, RATE)
            lines.write(json.dumps({"audio": f"u{i}.wav", "text": TEXTS[i], "duration": seconds}) + "\n")
    return folder / "manifest.jsonl"


def test_normaliser_ignores_case_and_punctuation():
    assert asr.normalise("Hello, World!") == asr.normalise("hello world") == "hello world"


def test_scores():
    perfect = asr.score("Mr. Smith paid twenty-five dollars.", "mister smith paid $25")
    assert perfect["wer"] == perfect["cer"] == 0 and perfect["reference_words"] > 0
    one_wrong = asr.score("the quick brown fox", "the quick brown box")
    assert one_wrong["wer"] == 0.25 and one_wrong["substitutions"] == 1
    assert asr.score("a b", "")["deletions"] == 2
    assert asr.error_rates([perfect, one_wrong])["wer"] == 1 / (perfect["reference_words"] + 4)


def test_speech_span_finds_the_loud_part():
    rng = np.random.default_rng(0)
    audio = np.concatenate([np.zeros(RATE // 2), 0.1 * rng.standard_normal(RATE), np.zeros(RATE // 2)])
    half_window = asr.SPAN_WINDOW // 2 * asr.FRAME_S  # a sharp edge shows half a window early and late
    assert asr.speech_span(audio.astype(np.float32), RATE) == (0.5 - half_window, 1.5 + half_window)
    assert asr.speech_span(np.zeros(RATE, np.float32), RATE) is None


def test_speech_span_skips_a_click_in_noise():
    """A 10 ms click in a noisy lead-in is not the start of speech (VCTK's recordings have them)."""
    rng = np.random.default_rng(1)
    audio = 0.003 * rng.standard_normal(3 * RATE)
    audio[RATE // 4 : RATE // 4 + RATE // 100] += 0.012 * rng.standard_normal(RATE // 100)  # the click, at 0.25 s
    audio[RATE : 2 * RATE] += 0.1 * rng.standard_normal(RATE)  # speech from 1 s to 2 s
    start, end = asr.speech_span(audio.astype(np.float32), RATE)
    assert 0.95 <= start <= 1.0 and 2.0 <= end <= 2.05
    assert asr.speech_span(audio.astype(np.float32), RATE, window=1)[0] == 0.25  # single frames take the click


def test_text_settles_at_its_last_change():
    """Partials that only mark words stable, and a final equal to its last partial, change nothing;
    a final that revises its partial does, and so does the next utterance's first partial."""
    event = lambda kind, text, stable=0: Event(kind, text, 0.0, 0.0, 1.0, stable=stable)
    one = [(0.5, event("partial", "the")), (0.9, event("partial", "the cat")), (1.1, event("partial", "the cat", 2))]
    assert asr.last_text_change([*one, (1.8, event("final", "the cat", 2))]) == 0.9
    assert asr.last_text_change([*one, (1.8, event("final", "the cap", 2))]) == 1.8
    two = [(1.8, event("final", "the cat", 2)), (2.4, event("partial", "sat")), (3.0, event("final", "sat", 1))]
    assert asr.last_text_change([*one, *two]) == 2.4
    assert asr.last_text_change([]) is None


def test_report_of_a_tiny_model(manifest, tmp_path):
    recognizer = StreamingRecognizer(tiny_asr_model(), endpoint={"trailing_silence_s": 0.4, "max_utterance_s": 3.0})
    sets = asr.load_sets([str(manifest)])
    report = asr.evaluate(recognizer, sets, tmp_path, chunk_ms=100, model_name="tiny")
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (tmp_path / "wer.png").stat().st_size > 0 and "| tiny_set | streaming | 2 |" in (
        tmp_path / "summary.md"
    ).read_text()
    result = report["sets"]["tiny_set"]
    assert result["utterances"] == 2 and result["hours"] == pytest.approx(6.5 / 3600)
    for mode in asr.MODES:
        assert set(result[mode]) >= {"wer", "cer", "rtf"} and result[mode]["rtf"] > 0
    assert {f"median_{latency}" for latency in asr.STREAMING_LATENCIES} <= set(result["streaming"])
    rows = result["rows"]
    assert [r["reference"] for r in rows] == TEXTS[:2] and [r["duration"] for r in rows] == [2.5, 4.0]
    for row in rows:
        assert set(row["streaming"]) >= {
            "hypothesis",
            "wer",
            "substitutions",
            "deletions",
            "insertions",
            *asr.STREAMING_LATENCIES,
        }
        assert row["streaming"]["hypothesis"] and row["streaming"]["hypothesis"] == row["offline"]["hypothesis"]
    assert report["modes_agree"] and result["modes_agree"]


def test_command_line(manifest, tmp_path, capsys):
    model_dir = save_model(tiny_asr_model(blank_bias=4.0), tmp_path / "model")
    one_utterance = ["asr", "--model", str(model_dir), "--sets", str(manifest), "--mode", "streaming", "--limit", "1"]
    code = eval_cli.main([*one_utterance, "--out", str(tmp_path / "out")])
    assert code == 0 and "| tiny_set | streaming | 1 |" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["modes"] == ["streaming"] and report["search"] == "transducer"  # the model's own
    code = eval_cli.main([*one_utterance, "--search", "ctc", "--out", str(tmp_path / "ctc")])
    assert code == 0 and "ctc search" in capsys.readouterr().out
    assert json.loads((tmp_path / "ctc" / "report.json").read_text())["search"] == "ctc"


def test_bad_input_is_reported(manifest, tmp_path, capsys):
    model_dir = save_model(tiny_asr_model(), tmp_path / "model")
    keyword_only = tmp_path / "keywords.jsonl"
    keyword_only.write_text(
        json.dumps({"audio": str(manifest.parent / "u0.wav"), "keyword": "yes", "duration": 2.5}) + "\n"
    )
    for sets, message in (
        ([str(tmp_path / "missing.jsonl")], "neither a named set"),
        ([str(keyword_only)], "no reference text"),
    ):
        assert eval_cli.main(["asr", "--model", str(model_dir), "--sets", *sets, "--out", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.skipif(not LIBRIVOX.is_dir(), reason="Debian package pocketsphinx-testdata is not installed")
def test_librivox_reader():
    utterances = librivox_utterances()
    assert len(utterances) == 5 and all(u.audio.is_file() and len(u.text.split()) >= 5 for u in utterances)
    assert utterances[1].text == "he was not an ill disposed young man"


@pytest.mark.skipif(not ASTERISK_SOUNDS.is_dir(), reason="Debian package asterisk-core-sounds-en-wav is not installed")
def test_asterisk_reader():
    prompts = {u.audio.name: u.text for u in asterisk_prompts()}
    assert len(prompts) > 300 and all(text for text in prompts.values())
    assert prompts["both_help.wav"] == "press star to toggle pause, press pound to enter a new dictation filename"
    assert speech_set("asterisk")[0] == "asterisk"


def test_ljs_reread_is_the_held_out_part(shared_data):
    name, utterances = speech_set("ljs-reread")
    assert name == "ljs-reread" and 50 < len(utterances) < 150 and all(u.text for u in utterances)
