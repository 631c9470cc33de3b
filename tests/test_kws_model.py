"""The shipped `kws` model: it loads by name, finds keywords in real recordings it was not
trained on, stays quiet on non-keyword speech, and its detections do not depend on chunking."""

import json

import numpy as np
import pytest

from streamssm import StreamingRecognizer
from streamssm.audio import read_audio
from streamssm.data.splits import real_kws_split
from streamssm.eval.kws import REPORT_SLACK_S, negative_sets, negative_stream
from streamssm.eval.kws_views import PICOVOICE_SNR_DB, add_noise, picovoice_order
from streamssm.sources import array_chunks, file_chunks
from virtual_mic import REPO

PAD = np.zeros(8000, np.float32)  # the audio before and after a clip: 0.5 s of silence


@pytest.fixture(scope="module")
def recognizer():
    return StreamingRecognizer.from_pretrained("kws")


def detect(recognizer, audio, chunk=2560):
    return list(recognizer.create_stream().run(array_chunks(audio, 16000, chunk)))


def held_out_clips(name, per_keyword, keywords):
    clips = {}
    for utterance in real_kws_split(name)["eval"]:
        if utterance.keyword in keywords and len(clips.setdefault(utterance.keyword, [])) < per_keyword:
            clips[utterance.keyword].append(utterance)
    return [u for group in clips.values() for u in group]


@pytest.mark.parametrize("name", ["wwb", "precise", "fsdd"])
def test_detects_keywords_in_held_out_real_recordings(recognizer, shared_data, name):
    clips = held_out_clips(name, 4, recognizer.keywords)
    found = [
        any(e.text == u.keyword for e in detect(recognizer, np.concatenate([PAD, read_audio(u.audio), PAD])))
        for u in clips
    ]
    recall = sum(found) / len(found)
    print(f"{name}: {sum(found)}/{len(found)} held-out clips detected")
    assert recall >= 0.6, f"{name}: only {sum(found)}/{len(found)} held-out clips detected"


def test_quiet_on_non_keyword_speech(recognizer, shared_data):
    """Ten of precise's non-wake-word clips, most of them phrases made to sound like its wake words
    ("a cheddar block", "you better talk"): the shipped model fires "hey chatterbox" on two of the
    "a cheddar block" clips (its card's limitations), and on nothing else."""
    negatives = [u for u in real_kws_split("precise")["eval"] if u.keyword is None][:10]
    audio = np.concatenate([np.concatenate([read_audio(u.audio), PAD]) for u in negatives])
    events = detect(recognizer, audio)
    print(f"{len(events)} events on {len(audio) / 16000:.0f} s of non-keyword speech: {events}")
    assert len(events) <= 2 and {e.text for e in events} <= {"hey chatterbox"}


def test_quiet_on_silence_and_noise(recognizer, shared_data):
    """A minute of digital silence, then real background noise: a quiet room must not fire."""
    noises = [
        read_audio(shared_data / "noise" / "speech-commands" / f"{name}.flac")[: 20 * 16000] * 0.1
        for name in ("white_noise", "pink_noise", "running_tap")
    ]
    events = detect(recognizer, np.concatenate([np.zeros(60 * 16000, np.float32), *noises]))
    assert events == [], events


def test_hears_wake_words_after_minutes_of_talk_and_noise(recognizer, shared_data):
    """Live, a wake word comes after minutes of room noise and talk, not after half a second of
    silence: held-out wake-word clips placed between 3 minutes of held-out read speech, real noise
    under all of it at 10 dB SNR (the Picovoice protocol of `eval kws`, small), are found where
    they are said, and the speech around them fires nothing."""
    clips = held_out_clips("wwb", 2, recognizer.keywords)
    talk = negative_sets(["vctk-p239"])["vctk-p239"][:60]
    utterances, placed = picovoice_order(clips, talk)
    stream = negative_stream(utterances, recognizer.keywords)
    audio = add_noise(stream.audio, shared_data / "noise", PICOVOICE_SNR_DB)
    events = detect(recognizer, audio)
    heard = [
        any(e.text == keyword and start <= e.end <= end + REPORT_SLACK_S for e in events)
        for (start, end, _), keyword in ((stream.spans[i], k) for i, k in placed)
    ]
    false_alarms = stream.false_alarms([(e.text, e.end) for e in events])
    print(f"{sum(heard)}/{len(heard)} wake words heard in {len(audio) / 16000:.0f} s, {false_alarms} false alarms")
    assert sum(heard) >= 0.75 * len(heard) and false_alarms == 0


def test_detections_do_not_depend_on_chunking(recognizer, shared_data):
    clips = held_out_clips("wwb", 2, recognizer.keywords)
    audio = np.concatenate([np.concatenate([read_audio(u.audio), PAD]) for u in clips])
    reference = [(e.text, e.end) for e in detect(recognizer, audio, chunk=len(audio))]
    assert reference
    for chunk in (160, 1234, 16000):
        assert [(e.text, e.end) for e in detect(recognizer, audio, chunk)] == reference


@pytest.mark.slow
@pytest.mark.parametrize("name", ["precise", "fsdd"])
def test_recall_on_whole_files_equals_the_padded_evaluation(recognizer, shared_data, name):
    """Every held-out clip of the set as `mic --input FILE` reads it (file blocks, then finish()),
    with no silence added: a keyword that ends the recording is reported, so recall is within two
    points of the model card's, measured with 0.5 s of silence around each clip (precise: 187/259 =
    72.2 % against 73.7 %; the model misses more at the very start of a stream)."""
    card = json.loads((REPO / "models" / "kws" / "eval" / "report.json").read_text())
    padded = card["shipped_thresholds"]["positives"][name]
    clips = [u for u in real_kws_split(name)["eval"] if u.keyword in recognizer.keywords]
    assert len(clips) == padded["clips"]
    found = sum(
        any(e.text == u.keyword for e in recognizer.create_stream().run(file_chunks(u.audio, 40))) for u in clips
    )
    print(f"{name}: {found}/{len(clips)} whole files, padded evaluation {padded['recall']:.3f}")
    assert found / len(clips) >= padded["recall"] - 0.02
