"""AR vs MDM learning curves on the same data and budget (lesson 06).

    python benchmarks/learning_curves.py --steps 1200 --out benchmarks/results/curves
    python benchmarks/learning_curves.py --from-runs runs/ship-ar runs/ship-mdm --out benchmarks/results/curves_ship

The first form trains nano AR and MDM with identical settings (only the objective differs) and
records validation loss (nats/token; a NELBO bound for MDM) against tokens and seconds. The second
plots existing training runs' logs. Writes curves.json and curves.png. MINIDLM_SMOKE=1 shrinks it.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minidlm.train import TrainConfig, train  # noqa: E402


def cumulative_seconds(elapsed: list[float]) -> list[float]:
    """A resumed run restarts its clock: where elapsed_s drops, a new segment began, so add the time
    of the segments before it (the time axis then only goes forward)."""
    out, offset, last = [], 0.0, 0.0
    for e in elapsed:
        if e < last:
            offset += last
        out.append(offset + e)
        last = e
    return out


def read_run(run: Path) -> dict:
    log = [json.loads(l) for l in open(run / "log.jsonl")]
    state = json.loads((run / "last.json").read_text())
    cfg = state.get("train_state", state)["train_config"]
    tokens_per_step = cfg["batch_size"] * cfg["seq_len"]
    vals = [r for r in log if "val_loss" in r]
    return {"objective": cfg["objective"], "run": str(run), "config": cfg,
            "tokens": [r["step"] * tokens_per_step for r in vals],
            "seconds": cumulative_seconds([r.get("elapsed_s", 0.0) for r in vals]),
            "val_loss": [r["val_loss"] for r in vals],
            "train_tokens_per_s": [r["tokens_per_s"] for r in log if "tokens_per_s" in r][-50:]}


FLOOR_JSON = Path(__file__).resolve().parent / "results" / "tales_floor.json"


def tales_floor() -> float | None:
    """The tiny-tales entropy floor in nats per counted token (benchmarks/tales_floor.py), if computed."""
    return json.loads(FLOOR_JSON.read_text())["floor"]["nats_per_token"] if FLOOR_JSON.exists() else None


def plot(curves: list[dict], path: Path, title: str, floor: float | None = None) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for c in curves:
        ax[0].plot(c["tokens"], c["val_loss"], marker="o", ms=3, label=c.get("label", c["objective"].upper()))
        ax[1].plot(c["seconds"], c["val_loss"], marker="o", ms=3, label=c.get("label", c["objective"].upper()))
    if floor is not None:                                # no model can go below the data's entropy
        for a in ax:
            a.axhline(floor, color="gray", ls="--", lw=1, label=f"entropy floor {floor:.3f}")
    ax[0].set_xlabel("training tokens")
    ax[1].set_xlabel("seconds (this machine)")
    for a in ax:
        a.set_ylabel("validation loss (nats/token; MDM: NELBO bound)")
        a.grid(alpha=0.3)
        a.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--preset", default="nano")
    ap.add_argument("--from-runs", nargs="+", help="plot these run folders instead of training")
    ap.add_argument("--labels", nargs="+", help="with --from-runs: a legend label per run")
    ap.add_argument("--append", action="store_true",
                    help="with --from-runs: add these runs to OUT/curves.json (a run already there is replaced)")
    ap.add_argument("--out", default="benchmarks/results/curves")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.from_runs:
        if a.labels and len(a.labels) != len(a.from_runs):
            ap.error(f"--labels: expected one per run ({len(a.from_runs)}), got {len(a.labels)}")
        curves = [read_run(Path(r)) for r in a.from_runs]
        for c, label in zip(curves, a.labels or []):
            c["label"] = label
        if a.append and (out / "curves.json").exists():
            new = {c["run"] for c in curves}
            curves = [c for c in json.loads((out / "curves.json").read_text()) if c["run"] not in new] + curves
        title = "AR vs MDM: validation loss of the shipped runs"
    else:
        smoke = os.environ.get("MINIDLM_SMOKE") == "1"
        steps, every = (20, 10) if smoke else (a.steps, a.eval_every)
        curves = []
        for objective in ("ar", "mdm"):
            run = out / f"run-{objective}"
            cfg = TrainConfig(objective=objective, preset=a.preset, steps=steps, eval_every=every,
                              ckpt_every=0, out=str(run), overwrite=True, progress=not smoke,
                              **({"batch_size": 16, "model_overrides": {"d_model": 32, "n_layer": 1, "n_head": 2}} if smoke else {}))
            train(cfg)
            curves.append(read_run(run))
        title = f"AR vs MDM, same data and budget ({steps} steps, preset {a.preset})"
    (out / "curves.json").write_text(json.dumps(curves, indent=1))
    on_tales = all(c["config"].get("data") is None for c in curves)         # the floor is tiny tales' entropy
    plot(curves, out / "curves.png", title, floor=tales_floor() if on_tales else None)
    print(json.dumps([{k: (c[k][-1] if isinstance(c[k], list) and c[k] else c[k]) for k in ("objective", "tokens", "val_loss")} for c in curves]))


if __name__ == "__main__":
    main()
