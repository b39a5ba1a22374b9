"""The likelihood spectrum (lessons 10 and 13): AR, Eso-LM from alpha0 = 0 to 1, and MDM.

    python benchmarks/esolm_spectrum.py --steps 300 --out benchmarks/results/spectrum
    python benchmarks/esolm_spectrum.py --steps 300 --only ar 1.0:A   # add settings to an existing run

Trains nano models with the same data, steps and batch (so the same compute in tokens): the AR
baseline (``ar``), Eso-LM at alpha0 in {0, 0.125, 0.25, 0.5, 1} in both attention variants (B:
exact KV cache; A: bidirectional among the clean tokens), and the MDM (``mdm``, MDLM's NELBO), and
records each one's validation loss (nats/token: the NLL for AR, the NELBO otherwise) and its
perplexity bound. Eso-LM's Table 1 orders them AR < 0.125 < 0.25 < 0.5 < 1 in perplexity and A < B
at alpha0 = 1. Writes spectrum.json and spectrum.png; MINIDLM_SMOKE=1 shrinks everything.
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from minidlm.train import TrainConfig, train

SETTINGS = ["ar", "0.0:B"] + [f"{a}:{v}" for a in (0.125, 0.25, 0.5, 1.0) for v in "BA"] + ["mdm"]


def parse_setting(text: str):
    """"ar" / "mdm" -> (objective, alpha0 used for plotting, variant label); "0.25:B" -> esolm."""
    if text in ("ar", "mdm"):
        return text, (0.0 if text == "ar" else 1.0), text.upper()
    try:
        alpha0, variant = text.split(":")
        return "esolm", float(alpha0), variant
    except ValueError:
        raise ValueError(f"--only: expected 'ar', 'mdm' or ALPHA0:VARIANT such as 0.25:B, got {text!r}") from None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/spectrum", help="where spectrum.json/.png go")
    ap.add_argument("--runs", default="runs/spectrum", help="where the training runs go")
    ap.add_argument("--only", nargs="+", help="e.g. ar 1.0:A: run these settings and merge them "
                                              "into an existing spectrum.json")
    a = ap.parse_args(argv)
    smoke = os.environ.get("MINIDLM_SMOKE") == "1"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = [parse_setting(x) for x in (a.only or SETTINGS)]
    rows = json.loads((out / "spectrum.json").read_text()) if a.only and (out / "spectrum.json").exists() else []
    rows = [r for r in rows if (r["alpha0"], r["variant"]) not in {(x[1], x[2]) for x in settings}]
    order = {"AR": 0, "B": 1, "A": 2, "MDM": 3}
    for objective, alpha0, variant in settings:
        run = Path(a.runs) / (f"run-{objective}" if objective != "esolm" else f"run-a{alpha0}-{variant}")
        extra = {"batch_size": 8, "model_overrides": {"d_model": 32, "n_layer": 1, "n_head": 2}} if smoke else {}
        eso = {"alpha0": alpha0, "variant": variant} if objective == "esolm" else {}
        cfg = TrainConfig(objective=objective, steps=10 if smoke else a.steps, eval_every=0, ckpt_every=0,
                          out=str(run), overwrite=True, progress=False, **eso, **{"batch_size": a.batch_size, **extra})
        s = train(cfg)
        rows.append({"model": objective, "alpha0": alpha0, "variant": variant, "val_nelbo": s["val_loss"],
                     "ppl_bound": math.exp(s["val_loss"]), "seconds": s["seconds"], "steps": cfg.steps,
                     "batch_size": cfg.batch_size, "run": str(run)})
        print(json.dumps(rows[-1]), flush=True)
        rows.sort(key=lambda r: (order[r["variant"]] if r["variant"] in ("AR", "MDM") else 1, r["alpha0"],
                                 order[r["variant"]]))
        (out / "spectrum.json").write_text(json.dumps(rows, indent=1))
    plot(rows, out / "spectrum.png")


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for variant, style in (("B", "-o"), ("A", "--s")):
        v = [r for r in rows if r["variant"] == variant]
        ax.plot([r["alpha0"] for r in v], [r["ppl_bound"] for r in v], style, label=f"Eso-LM variant {variant}")
    for variant, marker in (("AR", "*"), ("MDM", "D")):
        for r in (r for r in rows if r["variant"] == variant):
            ax.plot([r["alpha0"]], [r["ppl_bound"]], marker, markersize=11, color="k" if variant == "AR" else "C3",
                    label=variant)
    ax.set_xlabel("alpha0 (share of tokens decoded by diffusion)")
    ax.set_ylabel("validation perplexity bound exp(NELBO)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
