"""A run folder loses nothing (runfolder.py, train.py): refusals leave it untouched, resume says what
changes and never logs a step twice, a NaN loss stops the run before it is saved, Ctrl-C checkpoints."""
import json
import os
import shutil
import signal

import pytest
import torch

import minidlm.train as train_module
from minidlm.checkpoint import load_checkpoint
from minidlm.data import DATA_DIR
from minidlm.train import TrainConfig, train

TINY = dict(model_overrides=dict(d_model=32, n_layer=1, n_head=2), batch_size=8, progress=False)
SHIPPED = DATA_DIR / "checkpoints" / "tales-mdm-nano"


def snapshot(folder):
    """Every file's bytes, inode and modification time: a rewrite with the same bytes still shows."""
    return {p.name: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def log_steps(folder, key="loss"):
    return [r["step"] for r in map(json.loads, open(folder / "log.jsonl")) if key in r]


@pytest.fixture
def shipped_copy(tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(SHIPPED, dst)
    return dst


@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_holding_a_model_is_refused_and_left_byte_for_byte(shipped_copy, resume):
    before = snapshot(shipped_copy)
    with pytest.raises(ValueError, match="^resume: " if resume else "^out: ") as e:
        train(TrainConfig(out=str(shipped_copy), steps=1, resume=resume, **TINY))
    assert "overwrite" in str(e.value)
    assert snapshot(shipped_copy) == before


def test_a_finished_run_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(out=str(out), steps=4, eval_every=0, ckpt_every=0, **TINY))
    first = json.loads((out / "last.json").read_text())["save_id"]
    before = snapshot(out)
    with pytest.raises(ValueError, match="^out: .*already holds a run"):
        train(TrainConfig(out=str(out), steps=2, eval_every=0, ckpt_every=0, **TINY))
    assert snapshot(out) == before
    s = train(TrainConfig(out=str(out), steps=2, eval_every=0, ckpt_every=0, overwrite=True, **TINY))
    assert s["steps"] == 2
    ck = json.loads((out / "last.json").read_text())
    assert ck["save_id"] != first and ck["train_state"]["step"] == 2
    assert log_steps(out, "val_loss") == [2]                    # the old run's log is gone
    assert not [p for p in out.iterdir() if p.suffix == ".safetensors" and first in p.name]


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="^overwrite: "):
        train(TrainConfig(out=str(tmp_path / "r"), steps=1, resume=True, overwrite=True, **TINY))
    assert not (tmp_path / "r").exists()


def test_out_naming_a_file_is_refused_before_any_work(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    with pytest.raises(ValueError, match="^out: .*is a file"):
        train(TrainConfig(out=str(f), steps=1, **TINY))
    assert f.read_text() == "mine"


def test_a_refused_resume_leaves_the_run_byte_for_byte(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(out=str(out), steps=3, eval_every=0, ckpt_every=0, **TINY))
    before = snapshot(out)
    other = {**TINY, "model_overrides": dict(d_model=16, n_layer=1, n_head=2)}
    with pytest.raises(ValueError, match="^resume: .*another model config"):
        train(TrainConfig(out=str(out), steps=6, resume=True, **other))
    assert snapshot(out) == before                              # tokenizer.json and log.jsonl not rewritten


def test_resume_without_a_checkpoint_says_it_starts_fresh(tmp_path, capsys):
    s = train(TrainConfig(out=str(tmp_path / "new"), steps=2, eval_every=0, resume=True, **TINY))
    assert "no checkpoint" in capsys.readouterr().err
    assert s["steps"] == 2 and (tmp_path / "new" / "last.json").exists()


def test_resume_notes_changed_settings_and_cuts_the_log_back(tmp_path, capsys):
    out = tmp_path / "run"
    common = dict(out=str(out), steps=40, eval_every=0, ckpt_every=0, **TINY)
    train(TrainConfig(stop_at=20, **common))
    with open(out / "log.jsonl", "a") as f:                     # a run killed after logging step 30, before saving it
        f.write(json.dumps({"step": 30, "loss": 9.9}) + "\n" + '{"step": 3')
    capsys.readouterr()
    train(TrainConfig(resume=True, **{**common, "lr": 1e-3}))
    err = capsys.readouterr().err
    assert "lr was 0.003, now 0.001: from step 20 on" in err and "learning-rate schedule" in err
    steps = log_steps(out)
    assert steps == sorted(set(steps)) == [10, 20, 30, 40]      # step 30 once: the resumed run's
    assert 9.9 not in [r.get("loss") for r in map(json.loads, open(out / "log.jsonl"))]


def test_a_nan_loss_stops_the_run_naming_the_step_and_saves_no_nan_model(tmp_path, monkeypatch):
    real = train_module.compute_loss

    def poisoned(model, x0, cfg, mask_id, generator, rows=None, step=None):
        loss = real(model, x0, cfg, mask_id, generator, rows, step=step)
        return loss * float("nan") if step is not None and step >= 4 else loss   # steps 5, 6, ... (1-based)

    monkeypatch.setattr(train_module, "compute_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="^loss: step 5 gave a loss of nan"):
        train(TrainConfig(out=str(out), steps=20, eval_every=0, ckpt_every=3, **TINY))
    ck = load_checkpoint(out, "last")
    assert ck["train_state"]["step"] == 3
    assert all(torch.isfinite(v).all() for v in ck["state_dict"].values())
    assert not (out / "log.jsonl").exists()                    # nothing logged after step 3 (logs every 10 steps)


def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_resume_goes_on(tmp_path, monkeypatch):
    real = train_module.compute_loss

    def interrupting(model, x0, cfg, mask_id, generator, rows=None, step=None):
        if step == 6:
            os.kill(os.getpid(), signal.SIGINT)                 # the learner presses Ctrl-C during step 7
        return real(model, x0, cfg, mask_id, generator, rows, step=step)

    monkeypatch.setattr(train_module, "compute_loss", interrupting)
    out = tmp_path / "run"
    s = train(TrainConfig(out=str(out), steps=20, eval_every=0, ckpt_every=0, **TINY))
    assert s["interrupted"] and s["steps"] == 7
    assert load_checkpoint(out, "last")["train_state"]["step"] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler      # restored
    monkeypatch.setattr(train_module, "compute_loss", real)
    s = train(TrainConfig(out=str(out), steps=20, eval_every=0, ckpt_every=0, resume=True, **TINY))
    assert not s["interrupted"] and s["steps"] == 20


@pytest.mark.parametrize("field, value, match", [
    ("lr", float("inf"), "^lr: "), ("lr", float("nan"), "^lr: "), ("lr", 0.0, "^lr: "), ("lr", -1e-3, "^lr: "),
    ("seq_len", 100_000, "^seq_len: expected at most 64"), ("max_seconds", -1.0, "^max_seconds: "),
    ("max_seconds", float("nan"), "^max_seconds: "), ("peak_tflops", 0.0, "^peak_tflops: "),
    ("device", "gpu0", "^device: "), ("steps", 0, "^steps: "), ("batch_size", 0, "^batch_size: "),
])
def test_bad_train_settings_are_refused_by_name(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{**TINY, field: value})


def test_a_device_this_machine_lacks_is_refused_before_any_work(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="^device: cuda was asked for"):
        train(TrainConfig(out=str(tmp_path / "r"), device="cuda", steps=1, **TINY))
    assert not (tmp_path / "r").exists()
