"""The alpha0 spectrum (lesson 10): Eso-LM from AR (alpha0 = 0) to MDLM (alpha0 = 1).

    python benchmarks/esolm_spectrum.py --steps 500 --out benchmarks/results/spectrum
    python benchmarks/esolm_spectrum.py --steps 500 --only 1.0:B 1.0:A   # add settings to an existing run

Trains nano models with the same data, steps and batch at alpha0 in {0, 0.125, 0.25, 0.5, 1}
(variant B) and variant A at alpha0 = 1, and records each one's validation NELBO (nats/token) and
its perplexity bound. Eso-LM's Table 1 orders them AR < 0.125 < 0.25 < 0.5 < 1 in perplexity and
A < B at alpha0 = 1. Writes spectrum.json and spectrum.png; MINIDLM_SMOKE=1 shrinks everything.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from minidlm.train import TrainConfig, train

SETTINGS = [(0.0, "B"), (0.125, "B"), (0.25, "B"), (0.5, "B"), (1.0, "B"), (1.0, "A")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/spectrum", help="where spectrum.json/.png go")
    ap.add_argument("--runs", default="runs/spectrum", help="where the training runs go")
    ap.add_argument("--only", nargs="+", help="e.g. 1.0:B 1.0:A: run these settings and merge them "
                                              "into an existing spectrum.json")
    a = ap.parse_args()
    smoke = os.environ.get("MINIDLM_SMOKE") == "1"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = [(float(x.split(":")[0]), x.split(":")[1]) for x in a.only] if a.only else SETTINGS
    rows = json.loads((out / "spectrum.json").read_text()) if a.only and (out / "spectrum.json").exists() else []
    rows = [r for r in rows if (r["alpha0"], r["variant"]) not in settings]
    for alpha0, variant in settings:
        run = Path(a.runs) / f"run-a{alpha0}-{variant}"
        extra = {"batch_size": 8, "model_overrides": {"d_model": 32, "n_layer": 1, "n_head": 2}} if smoke else {}
        cfg = TrainConfig(objective="esolm", alpha0=alpha0, variant=variant, steps=10 if smoke else a.steps,
                          eval_every=0, ckpt_every=0, out=str(run), progress=False,
                          **{"batch_size": a.batch_size, **extra})
        s = train(cfg)
        rows.append({"alpha0": alpha0, "variant": variant, "val_nelbo": s["val_loss"],
                     "ppl_bound": math.exp(s["val_loss"]), "seconds": s["seconds"], "steps": cfg.steps,
                     "batch_size": cfg.batch_size, "run": str(run)})
        print(json.dumps(rows[-1]), flush=True)
        rows.sort(key=lambda r: (r["alpha0"], r["variant"] != "B"))
        (out / "spectrum.json").write_text(json.dumps(rows, indent=1))
    plot(rows, out / "spectrum.png")


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    b = [r for r in rows if r["variant"] == "B"]
    ax.plot([r["alpha0"] for r in b], [r["ppl_bound"] for r in b], "-o", label="variant B")
    for r in rows:
        if r["variant"] == "A":
            ax.plot([r["alpha0"]], [r["ppl_bound"]], "s", color="C1", label="variant A")
    ax.set_xlabel("alpha0 (share of tokens decoded by diffusion)")
    ax.set_ylabel("validation perplexity bound exp(NELBO)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
