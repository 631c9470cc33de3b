"""Distillation: the frame loss and its delay, teacher targets fitted to the student's frames, the
bounded-memory transducer loss, a real Whisper teacher's outputs and labels, the label command,
training with a teacher's stored outputs, and the speaker-disjoint splits of the new real sets."""

import json

import numpy as np
import pytest
import torch

from asr_helpers import tiny_asr_model
from streamssm.audio import read_audio
from streamssm.data.splits import real_split
from streamssm.distill.frames import FrameDistillation, batch_targets, fit_frames
from test_train_asr import read_log, shortest_train_clips, tiny_config


def identity_head(dim: int, delay: int) -> FrameDistillation:
    head = FrameDistillation(dim, dim, delay)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(dim))
        head.proj.bias.zero_()
    return head


def test_student_frame_t_is_compared_with_teacher_frame_t_minus_delay():
    torch.manual_seed(0)
    targets = torch.randn(2, 12, 8)
    late = torch.cat([torch.randn(2, 3, 8), targets[:, :9]], dim=1)  # student frame t holds teacher frame t - 3
    frames, has_target = torch.tensor([12, 12]), torch.tensor([True, True])
    assert identity_head(8, 3)(late, frames, targets, has_target) < 1e-6
    assert identity_head(8, 0)(late, frames, targets, has_target) > 0.5 * 9  # 9 frames of each row are off


def test_padding_and_rows_without_a_teacher_do_not_count():
    torch.manual_seed(0)
    targets = torch.randn(2, 10, 8)
    encoded = targets.clone()
    encoded[0, 6:] = -targets[0, 6:]  # beyond row 0's length
    encoded[1] = -targets[1]  # row 1 has no teacher
    loss = identity_head(8, 0)(encoded, torch.tensor([6, 10]), targets, torch.tensor([True, False]))
    assert loss < 1e-6
    none = identity_head(8, 0)(encoded, torch.tensor([6, 10]), targets, torch.tensor([False, False]))
    assert none == 0 and none.requires_grad


def test_teacher_frames_are_stretched_to_the_students_count():
    frames = np.arange(20, dtype=np.float16).reshape(10, 2)
    stretched = fit_frames(frames, 19)
    assert stretched.shape == (19, 2) and stretched[0].tolist() == [0, 1] and stretched[-1].tolist() == [18, 19]
    targets, has_target = batch_targets([frames, None], [10, 7], 2)
    assert targets.shape == (2, 10, 2) and has_target.tolist() == [True, False] and not targets[1].any()


def test_transducer_lattice_in_parts_gives_the_same_loss_and_gradients():
    model = tiny_asr_model().train()
    torch.manual_seed(1)
    features, lengths = torch.randn(3, 96, 80), torch.tensor([96, 70, 41])
    tokens, token_lengths = torch.randint(1, model.config.vocab_size, (3, 9)), torch.tensor([9, 5, 2])
    results = []
    for rows in (None, 1, 2):
        model.zero_grad()
        losses = model.loss(features, lengths, tokens, token_lengths, lattice_rows=rows)
        losses[0].backward()
        results.append(([float(x.detach()) for x in losses], [p.grad.clone() for p in model.parameters()]))
    for losses, grads in results[1:]:
        assert np.allclose(losses, results[0][0], rtol=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, results[0][1]))


@pytest.fixture(scope="module")
def teacher():
    pytest.importorskip("faster_whisper")
    from streamssm.distill.teachers import load_teacher

    return load_teacher("whisper-tiny.en")


def test_whisper_encoder_outputs_come_at_the_students_frame_rate(teacher, shared_data):
    clip = shortest_train_clips(1)[0]
    frames = teacher.encode(read_audio(clip.audio, 16000))
    student_frames = -(-(1 + (round(clip.duration * 16000) - 400) // 160) // 4)
    assert frames.shape[1] == 384 and abs(frames.shape[0] - student_frames) <= 1
    assert np.isfinite(frames).all()


def test_label_command_transcribes_clips_without_text(tmp_path, shared_data, teacher):
    from streamssm.data.label import main

    clips = sorted(real_split("ljs-reread")["train"], key=lambda u: abs(u.duration - 4.0))[:2]
    manifest = tmp_path / "untranscribed.jsonl"
    manifest.write_text(
        "".join(json.dumps({"audio": str(c.audio), "text": None, "duration": c.duration}) + "\n" for c in clips)
    )
    out = tmp_path / "labels.jsonl"
    main([str(manifest), "--out", str(out), "--min-confidence", "0"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(row["teacher"] == "whisper-tiny.en" for row in rows)
    from streamssm.eval.asr import error_rates, score

    for row, clip in zip(rows, clips):
        assert 0 < row["confidence"] <= 1 and row["words"] and row["words"][-1][2] <= clip.duration + 0.5
    assert error_rates([score(c.text, r["text"]) for c, r in zip(clips, rows)])["wer"] <= 0.35


def test_training_distils_the_stored_teacher_outputs(tmp_path, shared_data, teacher):
    from streamssm.distill.cache import TeacherCache
    from streamssm.train.asr import train

    config = tiny_config(
        tmp_path,
        shared_data,
        steps=2,
        teacher="whisper-tiny.en",
        distill_weight=1.0,
        teacher_cache=str(tmp_path / "cache"),
        validate_every=0,
    )
    with pytest.raises(FileNotFoundError, match="python -m streamssm.distill encode"):
        train(config)
    assert TeacherCache(tmp_path / "cache", "whisper-tiny.en").build(shortest_train_clips(8)) == 8
    train(config)
    distill = [row["distill"] for row in read_log(tmp_path) if "loss" in row]
    frames = [-(-round(c.duration * 100) // 4) for c in shortest_train_clips(8)]
    assert len(distill) == 2 and all(0 < value < 2 * max(frames) for value in distill)


def test_new_real_sets_split_by_speaker_and_leave_out_untranscribed_clips(shared_data):
    for name in ("speechocean762", "commonvoice-extra"):
        parts = real_split(name)
        assert parts["train"] and parts["eval"]
        assert not {u.speaker for u in parts["train"]} & {u.speaker for u in parts["eval"]}
        assert all(u.text for part in parts.values() for u in part)
    from streamssm.eval.sets import speech_set

    _, evaluated = speech_set("speechocean762")
    assert len(evaluated) == 500 and {u.split for u in evaluated} == {"test"}
    assert len({u.speaker for u in evaluated}) == 125
