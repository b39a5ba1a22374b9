"""Turn a training run into a shipped checkpoint with its card.

    python data/checkpoints/ship.py --run runs/ship-mdm --name tales-mdm-nano \
        --command "python -m minidlm train ..." [--samples 64]
    python data/checkpoints/ship.py --refresh tales-mdm-nano     # re-measure a shipped card in place

``--refresh`` keeps the weights and how they were trained, and recomputes what the current code
measures: the validation loss and the sampled stories' quality (after a fix to a loss or a sampler).

Writes data/checkpoints/NAME/ (bf16 weights as safetensors, model.json, tokenizer.json, card.json).
The card records the exact command, steps, wall time, machine, the validation loss of the
*shipped* (bf16) weights as computed by minidlm.train.evaluate (a test reproduces it), and for
the stories sampled from the model the tiny-tales checker's scores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from minidlm.checkpoint import export_model, load_model
from minidlm.data import tales_blocks
from minidlm.evaluate import sample_stories, story_report
from minidlm.tokenizer import load_tokenizer
from minidlm.train import TrainConfig, evaluate

HERE = Path(__file__).resolve().parent


def val_loss_of(model, tok, train_cfg: dict) -> float:
    """The validation loss exactly as training computed it (same split, seeds and batches)."""
    cfg = TrainConfig(**{**train_cfg, "progress": False, "resume": False})
    _, val = tales_blocks(tok, L=cfg.seq_len, seed=cfg.seed)
    return evaluate(model, val, cfg, tok.mask_id, torch.device("cpu"), nullcontext())


def quality_of(model, tok, train_cfg: dict, samples: int, seed: int) -> list[dict]:
    """The tiny-tales checker's scores of ``samples`` stories for each sampler setting the card lists."""
    objective = train_cfg["objective"]
    K = train_cfg.get("block_size")
    settings = [dict(objective=objective)] if objective == "ar" else \
        [dict(objective="esolm", alpha0=train_cfg["alpha0"])] if objective == "esolm" else [
        dict(objective="bd3lm", block_length=K, steps_per_block=max(1, K // 4)),       # 4 tokens per call
        dict(objective="bd3lm", block_length=K, steps_per_block=max(1, K // 2)),       # 2 tokens per call
        dict(objective="bd3lm", block_length=K, steps_per_block=K),                    # 1 token per call
        dict(objective="bd3lm", block_length=K, threshold=0.9),
        dict(objective="bd3lm", block_length=K, steps_per_block=1)] if objective == "bd3lm" else \
        [dict(objective="udlm", steps=T) for T in (4, 8, 16, 32, 63)] if objective == "udlm" else [
        dict(objective="mdm", steps=16, remasking="low_confidence"),
        dict(objective="mdm", steps=32, remasking="low_confidence"),
        dict(objective="mdm", steps=63, remasking="low_confidence"),
        dict(objective="mdm", threshold=0.9),
        dict(objective="mdm", steps=32, remasking="low_confidence", length_first=False),
        dict(objective="mdm", steps=32, remasking="random"),
        dict(objective="mdm", steps=63, remasking="low_confidence", block_length=21),
        dict(objective="mdm", steps=8, remasking="low_confidence")]
    out = []
    for s in settings:
        if objective == "mdm" and "block_length" not in s:
            s = {**s, "length_first": s.get("length_first", True)}         # recorded on the card
        texts, calls = sample_stories(model, tok, samples, seed=seed, return_calls=True, **s)
        extra = {"calls_per_story": calls} if calls == calls else {}         # nan for AR and Eso-LM
        out.append({**s, "n": samples, "seed": seed, **story_report(texts), **extra, "example": texts[0]})
        print(json.dumps(out[-1]))
    return out


def floor_gap(val_loss: float) -> dict:
    """The entropy floor of tiny tales (benchmarks/results/tales_floor.json) and the gap above it."""
    path = HERE.parent.parent / "benchmarks" / "results" / "tales_floor.json"
    if not path.exists():
        return {}
    floor = json.loads(path.read_text())["floor"]["nats_per_token"]
    return {"floor_nats_per_token": floor, "gap_to_floor": val_loss - floor}


def refresh(name: str, why: str) -> None:
    """Re-measure a shipped card in place: val_loss and quality from the shipped weights."""
    dst = HERE / name
    card = json.loads((dst / "card.json").read_text())
    model, info = load_model(dst, tag="model")
    tok = load_tokenizer(dst / "tokenizer.json")
    train_cfg = card.get("train_config") or info["train_state"]["train_config"]
    t0 = time.time()
    card["val_loss"] = val_loss_of(model, tok, train_cfg)
    card.update(floor_gap(card["val_loss"]))
    q = card.get("quality", [])
    if q:
        card["quality"] = quality_of(model, tok, train_cfg, q[0]["n"], q[0]["seed"])
    card["refreshed"] = {"date": time.strftime("%Y-%m-%d"), "why": why, "machine": machine()}
    card["card_seconds"] = time.time() - t0
    (dst / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: v for k, v in card.items() if k not in ("quality", "config", "train_config")}, indent=1))


def wall_time(log: list[dict]) -> float:
    """Training wall time from the log: a resumed run restarts its clock, so sum the largest
    elapsed_s of each segment (segments start where the step count goes back)."""
    total, seg_max, last_step = 0.0, 0.0, -1
    for r in log:
        if r["step"] < last_step:
            total, seg_max = total + seg_max, 0.0
        last_step = r["step"]
        seg_max = max(seg_max, r.get("elapsed_s", 0.0))
    return total + seg_max


def machine() -> str:
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, {platform.system()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refresh", metavar="NAME", help="re-measure the shipped card NAME in place, then stop")
    ap.add_argument("--why", default="re-measured with the current code", help="with --refresh: the reason, for the card")
    ap.add_argument("--run")
    ap.add_argument("--name")
    ap.add_argument("--command", help="the exact training command, for the card")
    ap.add_argument("--tag", default="best")
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default=None, help="anything the card should say about how it was trained")
    a = ap.parse_args()
    if a.refresh:
        return refresh(a.refresh, a.why)
    if not (a.run and a.name and a.command):
        ap.error("--run, --name and --command are required (or --refresh NAME)")
    run, dst = Path(a.run), HERE / a.name
    log = [json.loads(l) for l in open(run / "log.jsonl")]
    info = json.loads((run / f"{a.tag}.json").read_text())
    train_state = info.get("train_state", info)
    train_cfg = train_state["train_config"]
    export_model(run, dst, tag=a.tag, dst_tag="model", dtype=torch.bfloat16)
    shutil.copy(run / "tokenizer.json", dst / "tokenizer.json")
    model, _ = load_model(dst, tag="model")
    tok = load_tokenizer(dst / "tokenizer.json")
    t0 = time.time()
    val = val_loss_of(model, tok, train_cfg)
    card = {
        "name": a.name, "objective": train_cfg["objective"], "command": a.command,
        "steps": train_state["step"], "shipped_tag": a.tag,
        "run_steps": max(r["step"] for r in log), "batch_size": train_cfg["batch_size"], "seq_len": train_cfg["seq_len"],
        "train_tokens": train_state["step"] * train_cfg["batch_size"] * train_cfg["seq_len"],
        "wall_time_s": wall_time(log), "note": a.note,
        "machine": machine(), "params": model.num_params(),
        "val_loss_at_training": train_state.get("val_loss"),
        "val_loss": val, "val_loss_note": "nats/token on the tiny-tales validation split; a NELBO bound for mdm, bd3lm and udlm; "
                                          "computed with minidlm.train.evaluate on the shipped bf16 weights",
        **floor_gap(val), "config": model.config.to_dict(), "train_config": train_cfg,
    }
    if a.samples:
        card["quality"] = quality_of(model, tok, train_cfg, a.samples, a.seed)
    card["card_seconds"] = time.time() - t0
    (dst / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: v for k, v in card.items() if k != "quality"}, indent=1))


if __name__ == "__main__":
    main()
