"""Diffusion against AR when the data runs out (lesson 14; Prabhudesai et al. 2025, "Diffusion beats
autoregressive in data-constrained settings"), in miniature.

    python benchmarks/data_constrained.py [--quick] [--stories 1000] [--epochs 20]
                                          [--json benchmarks/results/data_constrained_cpu.json]

AR, MDM and BD3-LM (block 8) nano models are trained from scratch on the same small fixed subset of
tiny tales (the first ``--stories`` rows of the shipped training split, one story per row) for many
epochs, each epoch one pass over the subset in a fresh order, the same batch, learning rate and
cosine schedule for all three. After every epoch the held-out loss on the whole normal validation
split: AR's NLL per token, the NELBO per token for MDM and BD3-LM with fixed noise seeds. Both are
upper bounds on (or equal to) the same per-token negative log-likelihood, so the curves compare.
Writes JSON (settings, curves, the best epoch of each, a verdict computed from the curves) and a PNG.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from block_diffusion import heldout_loss, rel  # noqa: E402

from minidlm.data import shipped_tales_blocks  # noqa: E402
from minidlm.train import TrainConfig, build_model, compute_loss, lr_at  # noqa: E402

OBJECTIVES = ("ar", "mdm", "bd3lm")
NAMES = {"ar": "AR", "mdm": "MDM", "bd3lm": "BD3-LM"}
TOL = 0.01          # nats per token: a rise smaller than this is noise, not overfitting


def run(objective: str, subset: torch.Tensor, val: torch.Tensor, tok, epochs: int, batch_size: int, lr: float,
        seed: int, passes: int) -> dict:
    """Train one model for ``epochs`` passes over ``subset`` (N, L); the held-out loss after each."""
    steps_per_epoch = len(subset) // batch_size
    cfg = TrainConfig(objective=objective, block_size=8, batch_size=batch_size, steps=epochs * steps_per_epoch,
                      lr=lr, warmup=min(100, steps_per_epoch * epochs // 10), seed=seed, out="unused")
    torch.manual_seed(seed)
    model = build_model(cfg, tok)
    opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, device_type="cpu")
    order = torch.Generator().manual_seed(seed)
    curve, t0, step = [], time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(subset), generator=order)
        for i in range(steps_per_epoch):
            x0 = subset[perm[i * batch_size:(i + 1) * batch_size]]              # (B, L)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            opt.zero_grad(set_to_none=True)
            loss = compute_loss(model, x0, cfg, tok.mask_id, torch.Generator().manual_seed(seed * 1_000_003 + step))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
        curve.append({"epoch": epoch, "step": step, "train_loss": loss.item(),
                      "val_loss": heldout_loss(model, val, cfg, tok.mask_id, passes),
                      "seconds": time.perf_counter() - t0})
        print(json.dumps({"objective": objective, **curve[-1]}), flush=True)
    best = min(curve, key=lambda c: c["val_loss"])
    return {"objective": objective, "curve": curve, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
            "final_val_loss": curve[-1]["val_loss"], "steps": step, "params": model.num_params(),
            "seconds": time.perf_counter() - t0}


def verdict(runs: dict, tol: float = TOL) -> dict:
    """What the curves show, in one line, plus the facts it is built from."""
    epochs = len(next(iter(runs.values()))["curve"])
    over = {k: r["final_val_loss"] - r["best_val_loss"] > tol for k, r in runs.items()}      # turned up and stayed
    still = {k: r["best_epoch"] == epochs for k, r in runs.items()}                           # best at the end
    lowest = min(runs, key=lambda k: runs[k]["best_val_loss"])
    diff = [k for k in runs if k != "ar"]
    parts = []
    ar = runs.get("ar")
    if ar:
        parts.append(f"AR's held-out loss was lowest at epoch {ar['best_epoch']} ({ar['best_val_loss']:.3f})"
                     + (f" and rose to {ar['final_val_loss']:.3f} by epoch {epochs}" if over["ar"] else
                        " and had not turned up by the last epoch" if not still["ar"] else
                        " and still fell at the last epoch"))
    for k in diff:
        r = runs[k]
        parts.append(f"{NAMES[k]}'s " + (f"still fell at the last epoch ({r['best_val_loss']:.3f})" if still[k] else
                                          f"was lowest at epoch {r['best_epoch']} ({r['best_val_loss']:.3f})"
                                          + (f", {r['final_val_loss']:.3f} at the end" if over[k] else "")))
    parts.append(f"lowest held-out loss: {NAMES[lowest]}")
    ar_overfit = bool(ar and over["ar"])
    diff_better = bool(ar) and any(runs[k]["best_val_loss"] < ar["best_val_loss"] for k in diff)
    diff_kept = any(still[k] or not over[k] for k in diff)
    claim = ("reproduced" if ar_overfit and diff_better else
             "partly: AR overfits, diffusion keeps improving but stays above AR's best" if ar_overfit and diff_kept else
             "not reproduced")
    return {"text": "; ".join(parts) + ".", "claim": claim, "ar_overfit": ar_overfit, "diffusion_best_below_ar": diff_better,
            "diffusion_still_improving": {k: still[k] for k in diff}, "overfit": over, "lowest": lowest, "tol": tol}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI size: 64 stories, 2 epochs")
    ap.add_argument("--stories", type=int, default=None, help="training stories (default 1000)")
    ap.add_argument("--epochs", type=int, default=None, help="passes over them (default 20)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objectives", nargs="*", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--json", default="benchmarks/results/data_constrained_cpu.json")
    a = ap.parse_args(argv)
    quick = a.quick or os.environ.get("MINIDLM_SMOKE") == "1"
    n, epochs = a.stories or (64 if quick else 1000), a.epochs or (2 if quick else 20)
    train_rows, val, tok = shipped_tales_blocks(64, 0)
    if not a.batch_size <= n <= len(train_rows):
        raise SystemExit(f"--stories: expected {a.batch_size} (the batch) to {len(train_rows)}, got {n}")
    subset = train_rows[:n]                                                      # (n, 64): one story per row
    passes = 1 if quick else 4
    val = val[:100] if quick else val
    runs = {obj: run(obj, subset, val, tok, epochs, a.batch_size, a.lr, a.seed, passes) for obj in a.objectives}
    args = argv if argv is not None else sys.argv[1:]
    res = {"command": "python benchmarks/data_constrained.py " + " ".join(rel(x) if x.startswith("/") else x for x in args),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
           "threads": torch.get_num_threads(), "quick": quick,
           "settings": {"stories": n, "train_tokens_per_epoch": subset.numel(), "epochs": epochs,
                        "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed, "seq_len": 64, "block_size": 8,
                        "preset": "nano", "val_rows": len(val), "noise_passes": passes,
                        "loss": "held-out nats per token: AR's NLL, the NELBO (fixed seeds) for mdm and bd3lm"},
           "runs": runs, "verdict": verdict(runs) if "ar" in runs and len(runs) > 1 else None}
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    plot(res, out.with_suffix(".png"))
    print(json.dumps(res["verdict"], indent=1))


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, r in res["runs"].items():
        ax.plot([c["epoch"] for c in r["curve"]], [c["val_loss"] for c in r["curve"]], "-o", ms=3, label=NAMES[k])
        ax.plot([c["epoch"] for c in r["curve"]], [c["train_loss"] for c in r["curve"]], ":", alpha=0.5,
                color=ax.lines[-1].get_color())
    s = res["settings"]
    ax.set_xlabel(f"epoch over {s['stories']:,} stories")
    ax.set_ylabel("held-out loss (nats / token); dotted: train")
    ax.set_title("Repeated data: AR vs diffusion", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
