"""The wake-word user's view of a KWS evaluation: false alarms per hour per keyword group and keyword,
and the Picovoice protocol's miss rates, on detections made up for the test."""

from pathlib import Path

import numpy as np

from streamssm.audio import SAMPLE_RATE as SR
from streamssm.data.manifest import Utterance
from streamssm.eval.kws import NegativeStream
from streamssm.eval.kws_views import add_noise, group_point, picovoice_order, picovoice_report, views_summary
from streamssm.events import Event

KEYWORDS = ["one", "go", "alexa", "jarvis"]
HOUR = 3600.0


class MadeUpDecoding:
    """detect(): the events listed for a track whose score reaches the threshold of its keyword."""

    report_delay_s = 0.0

    def __init__(self, events: dict):
        self.events = events

    def detect(self, track, thresholds):
        return [Event("keyword", k, t - 0.5, t, score) for k, t, score in self.events[track] if score >= thresholds[k]]


class MadeUpStream(NegativeStream):
    """A stream as long as its last span, without its audio."""

    @property
    def hours(self) -> float:
        return self.spans[-1][1] / 3600


def stream(spans) -> MadeUpStream:
    return MadeUpStream(np.zeros(0, np.float32), spans)


def test_false_alarms_per_group_and_keyword():
    # two hours of speech; the second utterance says "go": a "go" there is no false alarm
    spans = [(0.0, HOUR, frozenset()), (HOUR, 2 * HOUR, frozenset({"go"}))]
    negatives = {"speech": (stream(spans), "negatives")}
    events = {
        "negatives": [("alexa", 100.0, 0.9), ("alexa", 200.0, 0.6), ("go", 300.0, 0.9), ("go", HOUR + 5, 0.9)],
        "alexa clip": [("alexa", 1.0, 0.95)],
        "one clip": [("go", 1.0, 0.95)],
    }
    positives = {"clips": [("alexa", 1.0, "alexa clip"), ("one", 1.0, "one clip")]}
    point = group_point(MadeUpDecoding(events), positives, negatives, KEYWORDS, dict.fromkeys(KEYWORDS, 0.5))
    assert point["keywords"]["alexa"]["false_alarms"] == {"speech": 2}
    assert point["keywords"]["go"]["false_alarms"] == {"speech": 1}  # the one in "go"'s utterance is not
    wake, commands, digits = (point["groups"][g] for g in ("wake words", "commands", "digits"))
    assert wake["keywords"] == ["alexa", "jarvis"] and wake["miss_rate"] == 0.0
    assert digits["miss_rate"] == 1.0 and commands["miss_rate"] is None  # "one" was heard as "go"
    assert point["hours"] == {"speech": 2.0}
    assert wake["false_alarms_per_hour"] == 1.0 and commands["false_alarms_per_hour"] == 0.5
    strict = group_point(MadeUpDecoding(events), positives, negatives, KEYWORDS, dict.fromkeys(KEYWORDS, 0.7))
    assert strict["keywords"]["alexa"]["false_alarms"] == {"speech": 1}
    summary = views_summary({"groups_at_shipped_thresholds": point})
    assert "| wake words |" in summary and "Most false alarms per hour: alexa" in summary


def test_picovoice_protocol():
    background = [Utterance(Path(f"b{i}"), text="hello") for i in range(9)]
    clips = [Utterance(Path(f"c{i}"), keyword=k) for i, k in enumerate(["alexa", "alexa", "jarvis"])]
    utterances, placed = picovoice_order(clips, background, seed=0)
    assert len(utterances) == 12 and sorted(k for _, k in placed) == ["alexa", "alexa", "jarvis"]
    assert [i for i, _ in placed] == [3, 6, 9]  # evenly between the background utterances
    assert all(utterances[i].text == k for i, k in placed)
    # 10 h stream: clips at 100 s, 200 s, 300 s; "alexa" also fires twice in speech at a low score
    spans = (
        [(0.0, 90.0, frozenset())]
        + [(100.0 * (j + 1), 100.0 * (j + 1) + 1, frozenset({k})) for j, k in enumerate(["alexa", "alexa", "jarvis"])]
        + [(400.0, 36000.0, frozenset())]
    )
    events = {"mixed": [("alexa", 101.2, 0.9), ("alexa", 201.0, 0.4), ("jarvis", 301.0, 0.8)]}
    events["mixed"] += [("alexa", 500.0, 0.45), ("alexa", 600.0, 0.45)]
    view = picovoice_report(
        MadeUpDecoding(events),
        stream(spans),
        "mixed",
        [(1, "alexa"), (2, "alexa"), (3, "jarvis")],
        ["alexa", "jarvis"],
        [0.2, 0.35, 0.5],
        slack_s=0.5,
    )
    alexa, jarvis = view["wake_words"]["alexa"], view["wake_words"]["jarvis"]
    assert [p["miss_rate"] for p in alexa["curve"]] == [0.0, 0.0, 0.5]
    assert [p["false_alarms_per_hour"] for p in alexa["curve"]] == [0.2, 0.2, 0.0]
    assert alexa["0.5 per h"] == 0.0 and alexa["1 per 10 h"] == 0.5  # 2 false alarms in 10 h: over 1 per 10 h
    assert jarvis["1 per 10 h"] == 0.0 and jarvis["clips"] == 1


def test_noise_is_added_at_the_snr(shared_data):
    speech = (np.random.default_rng(0).normal(size=SR * 130) * 0.05).astype(np.float32)
    noise = add_noise(speech, shared_data / "noise", 10.0, seed=0) - speech
    assert np.isclose(10 * np.log10(np.mean(speech**2) / np.mean(noise**2)), 10.0, atol=0.2)
