"""The checkpoints the course ships: they load, match their cards, and drive the demo."""
import json
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch

from minidlm.checkpoint import load_model
from minidlm.data import DATA_DIR, tales_blocks
from minidlm.tokenizer import load_tokenizer
from minidlm.train import TrainConfig, evaluate

CKPTS = DATA_DIR / "checkpoints"
NAMES = ["tales-mdm-nano", "tales-ar-nano", "tales-esolm-nano", "tales-bd3lm-nano", "tales-udlm-nano"]


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_reproduces_its_card(name):
    d = CKPTS / name
    card = json.loads((d / "card.json").read_text())
    size = sum(p.stat().st_size for p in d.iterdir() if p.suffix == ".safetensors")
    assert size <= 10_000_000
    model, _ = load_model(d)
    tok = load_tokenizer(d / "tokenizer.json")
    assert model.config.to_dict() == card["config"]
    cfg = TrainConfig(objective=card["objective"], seq_len=card["seq_len"], batch_size=card["batch_size"],
                      progress=False, **{k: card["train_config"][k] for k in ("alpha0", "variant", "block_size") if k in card.get("train_config", {})})
    _, val = tales_blocks(tok, L=cfg.seq_len, seed=0)
    val_loss = evaluate(model, val, cfg, tok.mask_id, torch.device("cpu"), nullcontext())
    assert val_loss == pytest.approx(card["val_loss"], rel=0.02)
    assert (model.config.mask_id is not None) == (card["objective"] in ("mdm", "esolm", "bd3lm", "udlm"))
    for k in ("command", "steps", "wall_time_s", "machine"):
        assert card[k], k


def test_demo_prints_a_story_and_sample_refuses_the_wrong_kind(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "minidlm", "demo", "--no-animation", "--seed", "0"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    story = out.stdout.strip()
    assert len(story.split()) >= 10 and "[MASK]" not in story
    bad = subprocess.run([sys.executable, "-m", "minidlm", "sample", "--ckpt", str(CKPTS / "tales-ar-nano"),
                          "--strategy", "low_confidence"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "not" not in bad.stdout and "AR model" in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "minidlm", "sample", "--ckpt", str(CKPTS / "tales-mdm-nano"),
                         "--strategy", "adaptive", "--n", "2", "--seed", "1", "--prompt", "Once upon a time"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and all(l.startswith("Once upon a time") for l in ok.stdout.strip().splitlines())


def test_bd3lm_samples_variable_length_stories_from_the_command_line():
    """The shipped block diffusion model through `sample --strategy bd3lm`: stories that end with
    their block (no [MASK] left), and a refusal for the wrong strategy."""
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    ckpt = str(CKPTS / "tales-bd3lm-nano")
    ok = subprocess.run([sys.executable, "-m", "minidlm", "sample", "--ckpt", ckpt, "--strategy", "bd3lm",
                         "--steps-per-block", "2", "--n", "3", "--seed", "0", "--prompt", "Once upon a time"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert len(lines) == 3 and all(l.startswith("Once upon a time") and "[MASK]" not in l for l in lines)
    assert "network calls" in ok.stderr
    bad = subprocess.run([sys.executable, "-m", "minidlm", "sample", "--ckpt", ckpt, "--strategy", "esolm"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "BD3-LM" in bad.stderr and "--strategy bd3lm" in bad.stderr


def test_udlm_samples_from_the_command_line():
    """The shipped uniform-state model through `sample --strategy uniform`: one call per step, stories
    without [MASK] that keep the prompt; the masked strategies are refused for it."""
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    ckpt = str(CKPTS / "tales-udlm-nano")
    ok = subprocess.run([sys.executable, "-m", "minidlm", "sample", "--ckpt", ckpt, "--strategy", "uniform",
                         "--steps", "8", "--n", "3", "--seed", "0", "--prompt", "Once upon a time"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.strip().splitlines()
    assert len(lines) == 3 and all(l.startswith("Once upon a time") and "[MASK]" not in l for l in lines)
    assert "8 network calls" in ok.stderr
    bad = subprocess.run([sys.executable, "-m", "minidlm", "sample", "--ckpt", ckpt, "--strategy", "low_confidence"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "uniform-state" in bad.stderr and "--strategy uniform" in bad.stderr
