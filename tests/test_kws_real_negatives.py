"""KWS training on real transcribed speech: a keyword a transcript says is never trained as filler on
that audio (it becomes a positive where it can be placed), and hard-negative mining is reproducible."""

from pathlib import Path

import numpy as np
import torch

from streamssm.data.manifest import Utterance
from streamssm.data.transcript_keywords import keyword_ends, said_keywords
from streamssm.models import KWSConfig, KWSModel
from streamssm.nn.encoder import EncoderConfig
from streamssm.train.kws import (
    SR,
    ClipBank,
    ClipPools,
    ExampleMaker,
    KWSTrainConfig,
    kws_loss,
    make_batch,
    mine_hard_negatives,
    sort_clips,
)

KEYWORDS = ["one", "on", "computer", "hey computer"]


class Silent:
    """An augmenter that changes nothing (and has no noise)."""

    def __call__(self, audio):
        return audio

    def noise_segment(self, length):
        return np.zeros(length, np.float32)


def speech(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=int(seconds * SR)) * 0.1).astype(np.float32)


def test_transcripts_say_keywords_however_numbers_are_read():
    assert said_keywords("Press 1 to continue", KEYWORDS) == {"one"}
    assert said_keywords("Dial 911 now", KEYWORDS) == {"one"}  # read "nine one one"
    assert said_keywords("Shopping online, once", KEYWORDS) == frozenset()
    assert said_keywords("Hey computer, lights on", KEYWORDS) == {"hey computer", "computer", "on"}


def test_keywords_are_placed_by_word_times_or_at_the_transcript_end():
    timed = Utterance(
        Path("x"),
        text="Turn it on. Chapter 1.",
        words=[("Turn", 0.0, 0.3), ("it", 0.3, 0.4), ("on.", 0.4, 0.7), ("Chapter", 1.0, 1.5), ("1.", 1.5, 1.9)],
    )
    assert keyword_ends(timed, ["on", "one"]) == [("on", 0.7), ("one", 1.9)]
    assert keyword_ends(Utterance(Path("x"), text="ZERO THREE FIVE ONE"), ["one", "on"]) == [("one", None)]
    assert keyword_ends(Utterance(Path("x"), text="Hey computer"), ["computer", "hey computer"]) == [
        ("hey computer", None)
    ]
    assert keyword_ends(Utterance(Path("x"), text="one more time"), ["one"]) == []  # said, but not placeable
    assert keyword_ends(Utterance(Path("x"), text="call 911"), ["one"]) == []


def test_a_transcript_saying_a_keyword_is_never_a_negative_for_it():
    kept = [
        ("tts", Utterance(Path("kw.flac"), text="computer", keyword="computer", duration=0.6)),
        ("real", Utterance(Path("a.flac"), text="please turn the lights on", speaker="a", duration=2.0)),
        ("real", Utterance(Path("b.flac"), text="he was one of them", speaker="b", duration=2.0)),
    ]
    positives, negatives, calibration, said = sort_clips(kept, KEYWORDS, calibration_percent=0)
    assert negatives["real"] == [1, 2] and calibration == []
    assert said == {1: {"on"}, 2: {"one"}}
    assert positives["on"]["real"] == [(1, 2 * SR)]  # the transcript ends in it: a positive at its end
    assert positives["one"]["real"] == []  # said mid-sentence without word times: only never a negative

    bank = ClipBank.of([speech(0.6, 0), speech(2.0, 1), speech(2.0, 2)])
    pools = ClipPools(bank, positives, negatives, calibration, said)
    config = KWSTrainConfig(keywords=KEYWORDS, positive_fraction=0.0, tail_s=2.0)
    maker = ExampleMaker(KEYWORDS, pools, Silent(), config)
    batch, lengths, labels, ends, allowed = make_batch(maker, np.random.default_rng(0), 16)
    assert (labels == 0).all()
    on, one = KEYWORDS.index("on") + 1, KEYWORDS.index("one") + 1
    assert (allowed[:, on] | allowed[:, one]).all()  # every example holds speech of one of the two
    # where the model says "on" on audio whose transcript says it, the filler term costs nothing
    logits = torch.full((16, 40, len(KEYWORDS) + 1), -20.0)
    logits[..., on] = 20.0
    mask = torch.zeros_like(allowed)
    mask[:, 0], mask[:, on] = True, True
    _, filler, _ = kws_loss(logits, torch.full((16,), 40), labels, ends, mask, 2, 5, 3)
    assert filler.item() < 1e-6


def tiny_setup(seed=0):
    torch.manual_seed(seed)
    encoder = EncoderConfig(d_model=32, n_layers=1, d_state=16, headdim=16, subsampling_channels=32)
    model = KWSModel(KWSConfig(keywords=KEYWORDS, encoder=encoder)).eval()
    clips = [speech(1.5, i) for i in range(6)]
    pools = ClipPools(ClipBank.of(clips), {}, {"real": [0, 1, 2], "tts": [3, 4, 5]}, [], {2: frozenset({"on"})})
    config = KWSTrainConfig(keywords=KEYWORDS, hard_negative_fraction=1.0, negative_s=1.0)
    return model, ExampleMaker(KEYWORDS, pools, Silent(), config)


def test_hard_negative_mining_is_reproducible_and_its_windows_are_drawn():
    model, maker = tiny_setup()
    mine = lambda threshold: mine_hard_negatives(model, maker, np.random.default_rng([0, 4000]), 24, threshold)
    everything, nothing = mine(0.0), mine(1.01)
    assert len(everything) == 24 and nothing == []
    first = mine(0.05)
    assert mine(0.05) == first  # same seed, same model: the same windows
    model_again, maker_again = tiny_setup()
    assert mine_hard_negatives(model_again, maker_again, np.random.default_rng([0, 4000]), 24, 0.05) == first
    assert all(end - start <= SR for _, start, end in everything)
    maker.hard_negatives = everything[:3]
    rng = np.random.default_rng(1)
    for _ in range(10):  # with hard_negative_fraction 1, every negative is a mined window
        audio, said = maker._negative(rng, 1.0, hard=True)
        assert any(np.array_equal(audio, maker.pools.bank[i][s:e]) for i, s, e in everything[:3])
