import json

import pytest
import torch

from minidlm.__main__ import main
from minidlm.train import TrainConfig, lr_at, pick_device, train

TINY = dict(model_overrides=dict(d_model=32, n_layer=2, n_head=2), batch_size=8, progress=False)


def _losses(path):
    return [r["loss"] for r in map(json.loads, open(path / "log.jsonl")) if "loss" in r]


@pytest.mark.parametrize("objective", ["mdm", "ar"])
def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, objective):
    full = TrainConfig(objective=objective, steps=40, eval_every=20, ckpt_every=20, out=str(tmp_path / "a"), **TINY)
    train(full)
    part = TrainConfig(objective=objective, steps=40, eval_every=20, ckpt_every=20, out=str(tmp_path / "b"),
                       max_seconds=0.0, **TINY)          # stops (and checkpoints) after its first step
    train(part)
    assert len(_losses(tmp_path / "b")) == 0
    # interrupted at step 1: resume must continue from the checkpoint, not restart
    state = json.loads((tmp_path / "b" / "last.json").read_text())
    assert "step" in json.dumps(state)
    train(TrainConfig(objective=objective, steps=40, eval_every=20, ckpt_every=20, out=str(tmp_path / "b"),
                      resume=True, **TINY))
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    vals = lambda p: [r["val_loss"] for r in map(json.loads, open(p / "log.jsonl")) if "val_loss" in r]
    assert vals(tmp_path / "b")[-1] == vals(tmp_path / "a")[-1]


def test_stop_at_segments_repeat_the_uninterrupted_run(tmp_path):
    """stop_at ends a run early on its full schedule; resuming with a later stop_at goes on exactly."""
    common = dict(objective="mdm", steps=30, eval_every=0, ckpt_every=0, **TINY)
    train(TrainConfig(out=str(tmp_path / "a"), **common))
    for stop in (10, 20, None):
        s = train(TrainConfig(out=str(tmp_path / "b"), stop_at=stop, resume=True, **common))
        assert s["steps"] == (stop or 30)
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    with pytest.raises(ValueError, match="stop_at"):
        TrainConfig(steps=10, stop_at=11)


def test_seconds_per_step_times_real_steps():
    from minidlm.train import seconds_per_step
    tiny = dict(model_overrides=dict(d_model=32, n_layer=1, n_head=2), batch_size=8)
    small = seconds_per_step(TrainConfig(objective="ar", **tiny), repeats=3)
    big = seconds_per_step(TrainConfig(objective="ar", model_overrides=dict(d_model=128, n_layer=4, n_head=4),
                                       batch_size=64), repeats=3)
    assert 0 < small < big                   # 64 rows through a 4-layer model cost more than 8 through 1
    with pytest.raises(ValueError, match="repeats"):
        seconds_per_step(TrainConfig(**tiny), repeats=0)


def test_training_reduces_the_loss(tmp_path):
    s = train(TrainConfig(objective="ar", steps=80, warmup=5, eval_every=0, ckpt_every=0, out=str(tmp_path), lr=1e-2, **TINY))
    losses = _losses(tmp_path)
    assert losses[-1] < losses[0] - 2.0 and s["val_loss"] < 3.5, (losses, s)


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=1000, warmup=100, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(999, cfg) == pytest.approx(1e-4, rel=1e-3)
    assert lr_at(500, cfg) < lr_at(200, cfg)


def test_device_pick_falls_back_to_cpu():
    d = pick_device("auto")
    assert d.type == ("cuda" if torch.cuda.is_available() else d.type)
    assert pick_device("cpu").type == "cpu"


def test_bad_configs():
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="gan")
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(preset="huge")
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="d_model"):
        train(TrainConfig(model_overrides=dict(d_model=30, n_head=4), steps=1, out="/tmp/minidlm-never", progress=False))


def test_resume_with_another_model_refuses(tmp_path):
    train(TrainConfig(steps=2, eval_every=0, ckpt_every=1, out=str(tmp_path), **TINY))
    other = dict(TINY, model_overrides=dict(d_model=64, n_layer=2, n_head=2))
    with pytest.raises(ValueError, match="resume"):
        train(TrainConfig(steps=4, resume=True, out=str(tmp_path), **other))


def test_command_line_trains_and_resumes(tmp_path, capsys):
    args = ["train", "--objective", "mdm", "--steps", "6", "--d-model", "32", "--n-layer", "1", "--n-head", "2",
            "--batch-size", "4", "--eval-every", "3", "--ckpt-every", "3", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    assert (tmp_path / "last.json").exists() and (tmp_path / "tokenizer.json").exists()
    assert main(args[:4] + ["9"] + args[5:] + ["--resume"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out)["steps"] == 9
