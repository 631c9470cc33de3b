"""StreamingRecognizer and streams: chunking does not change events, batches equal single streams,
state size is fixed, options and bad input are checked."""

import re
import shutil

import numpy as np
import pytest
import torch

from streamssm.audio import read_audio
from streamssm.models import KWSConfig, KWSModel, load_model, save_model
from streamssm.nn.encoder import EncoderConfig
from streamssm.recognizer import PIECE_S, StreamingRecognizer
from stream_helpers import alone_and_batched, events_of

KEYWORDS = ["alexa", "computer", "yes"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = KWSConfig(
        keywords=KEYWORDS,
        default_threshold=0.34,
        refractory_s=0.5,
        encoder=EncoderConfig(d_model=48, n_layers=2, d_state=16, headdim=16, subsampling_channels=48),
    )
    return save_model(KWSModel(config), tmp_path_factory.mktemp("model") / "kws")


@pytest.fixture(scope="module")
def speech(shared_data):
    folder = shared_data / "kws" / "wwb"
    return np.concatenate(
        [
            read_audio(folder / "alexa" / "1.flac"),
            read_audio(folder / "computer" / "04fdc82a-70e8-4e64-9fc5-189bcecb28ce.flac"),
        ]
    )


def test_save_load_round_trip(model_dir):
    model = load_model(model_dir)
    assert model.config.keywords == KEYWORDS and model.config.default_threshold == 0.34
    with pytest.raises(FileNotFoundError, match="no model 'nope'"):
        load_model("nope")


def test_events_do_not_depend_on_chunking(model_dir, speech):
    rec = StreamingRecognizer.from_pretrained(model_dir)
    whole = events_of(rec.create_stream(), speech, [len(speech)])
    assert whole, "the low threshold should produce some events on a random model"
    rng = np.random.default_rng(0)
    for sizes in ([160] * (len(speech) // 160 + 1), list(rng.integers(1, 9000, len(speech) // 100))):
        chunked = events_of(rec.create_stream(), speech, sizes)
        assert [(e.text, e.end) for e in chunked] == [(e.text, e.end) for e in whole]
        assert np.allclose([e.score for e in chunked], [e.score for e in whole], atol=1e-4)


def test_batched_streams_equal_single_streams(model_dir, speech):
    rec = StreamingRecognizer.from_pretrained(model_dir)
    alone, batched = alone_and_batched(rec, speech, [0, 7000, 23000])  # streams of different ages and lengths
    for a, b in zip(alone, batched):
        assert [(e.text, e.end) for e in a] == [(e.text, e.end) for e in b]


def test_state_size_is_constant(model_dir, speech):
    stream = StreamingRecognizer.from_pretrained(model_dir).create_stream()
    size = stream.state_nbytes
    for start in range(0, len(speech), 3333):
        stream.accept_waveform(speech[start : start + 3333], 16000)
        assert stream.state_nbytes == size


def test_keyword_subset_and_thresholds(model_dir, speech):
    rec = StreamingRecognizer.from_pretrained(model_dir, keywords=["yes"], thresholds={"yes": 0.34})
    assert {e.text for e in events_of(rec.create_stream(), speech, [len(speech)])} <= {"yes"}
    assert StreamingRecognizer.from_pretrained(model_dir, thresholds=1.0).thresholds == dict.fromkeys(KEYWORDS, 1.0)
    assert StreamingRecognizer.from_pretrained(model_dir, keywords=["yes", "jarvis"]).keywords == ["yes", "jarvis"]
    with pytest.raises(ValueError, match="'42' has no letters"):  # a word the model was not trained on is text
        StreamingRecognizer.from_pretrained(model_dir, keywords=["42"])
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        StreamingRecognizer.from_pretrained(model_dir, thresholds={"yes": 1.5})


def test_bad_input_is_rejected_and_changes_nothing(model_dir, speech):
    rec = StreamingRecognizer.from_pretrained(model_dir)
    clean, dirty = rec.create_stream(), rec.create_stream()
    bad = speech[:1000].copy()
    bad[10] = np.nan
    for chunk, rate, error in (
        (bad, 16000, "NaN"),
        (np.zeros((100, 2), np.float32), 16000, "downmix"),
        (speech[:100].astype(np.uint8), 16000, "uint8"),
        (speech[:100], 0, "sample rate"),
    ):
        with pytest.raises((ValueError, TypeError), match=error):
            dirty.accept_waveform(chunk, rate)
    assert dirty.accept_waveform(np.zeros(0, np.float32), 16000) == []
    assert events_of(dirty, speech, [len(speech)]) == events_of(clean, speech, [len(speech)])
    with pytest.raises(RuntimeError, match="finished"):
        dirty.accept_waveform(speech[:100], 16000)


def encoder_calls(model):
    """Records (torch threads, feature frames) of every encoder call of `model`."""
    calls = []
    model.encoder.register_forward_hook(
        lambda module, args, out: calls.append((torch.get_num_threads(), args[0].shape[1]))
    )
    return calls


def test_decoding_runs_on_one_thread_and_restores_the_callers_setting(model_dir, speech):
    rec = StreamingRecognizer.from_pretrained(model_dir)
    calls, before = encoder_calls(rec.model), torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        events_of(rec.create_stream(), speech, [4000] * (len(speech) // 4000 + 1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert calls and {threads for threads, _ in calls} == {1}
    with pytest.raises(ValueError, match="threads"):
        StreamingRecognizer.from_pretrained(model_dir, threads=0)


def test_a_long_chunk_is_decoded_in_bounded_pieces(model_dir, speech):
    rec = StreamingRecognizer.from_pretrained(model_dir)
    long = np.tile(speech, int(60 * 16000 / len(speech)) + 1)  # over a minute in one chunk
    calls = encoder_calls(rec.model)
    whole = events_of(rec.create_stream(), long, [len(long)])
    frame_s = rec.model.config.features.frame_s
    assert len(calls) > 6 and max(frames for _, frames in calls) * frame_s / 4 <= PIECE_S
    chunked = events_of(rec.create_stream(), long, [16000] * (len(long) // 16000 + 1))
    assert [(e.text, e.end) for e in whole] == [(e.text, e.end) for e in chunked]


@pytest.mark.parametrize("broken", ["model.safetensors", "config.json"])
def test_a_corrupt_model_file_is_named(model_dir, tmp_path, broken):
    copy = tmp_path / "kws"
    shutil.copytree(model_dir, copy)
    (copy / broken).write_bytes((copy / broken).read_bytes()[:100])
    with pytest.raises(ValueError, match=re.escape(str(copy / broken))):
        load_model(copy)
