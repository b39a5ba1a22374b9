"""What a CPU second of training buys: valid stories against training seconds for three recipes.

    python benchmarks/valid_vs_cpu.py --json benchmarks/results/valid_vs_cpu.json

  ar           an autoregressive model from scratch (lr 3e-3);
  mdm          a masked diffusion model from scratch (lr 3e-3);
  mdm-from-ar  an MDM started from the ar run's checkpoint at --ar-start steps (the AR-to-diffusion
               adaptation of Dream / DiffuLLaMA: the AR head's shift kept, attention annealed from
               causal to bidirectional over --anneal steps, lr 1e-3). Its clock starts at the AR
               run's seconds up to that checkpoint: the AR start is paid for.

Each run trains on one full cosine schedule of max(--stops) steps, stopped at every step count in
--stops (``TrainConfig.stop_at``) and resumed exactly; at each stop --n stories are sampled (AR left
to right; MDM low-confidence with T = L / 2 steps, the length drawn first) and graded by the
tiny-tales checker. Seconds are the training loops' wall time (set-up and sampling excluded) with
one torch thread: CPU seconds on an otherwise idle core. Writes JSON and a PNG beside it. Issue 14; lesson 06 teaches the adaptation.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from minidlm.checkpoint import load_model
from minidlm.evaluate import sample_stories, story_report
from minidlm.tokenizer import load_tokenizer
from minidlm.train import TrainConfig, train


def run_arm(name: str, out: Path, stops: list[int], n: int, steps_T: int, base: dict,
            clock0: float = 0.0, on_stop=None) -> list[dict]:
    """Train one recipe in segments; after each stop grade n sampled stories. Returns the points."""
    points, seconds = [], clock0
    for stop in stops:
        train(TrainConfig(out=str(out), stop_at=stop, resume=True, **base))
        log = [json.loads(line) for line in open(out / "log.jsonl")]
        seconds += [r for r in log if "elapsed_s" in r][-1]["elapsed_s"]    # this segment's loop, no set-up
        model, info = load_model(out, tag="last")
        tok = load_tokenizer(out / "tokenizer.json")
        objective = "ar" if base["objective"] == "ar" else "mdm"
        texts = sample_stories(model, tok, n, objective=objective, steps=steps_T, seed=1)
        rep = story_report(texts)
        val = json.loads((out / "last.json").read_text())["train_state"]["val_loss"]
        points.append({"steps": stop, "seconds": seconds, "val_loss": val, "valid": rep["valid"],
                       "mean_words": rep["mean_words"], "distinct_openings": rep["distinct_openings"],
                       "unigram_entropy": rep["unigram_entropy"], "example": texts[0]})
        print(json.dumps({"arm": name, **points[-1]}), flush=True)
        if on_stop is not None:
            on_stop(stop, seconds)
    return points


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from minidlm.viz import valid_vs_seconds

    axes = valid_vs_seconds(result)
    axes[0].figure.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stops", default="100,200,400,700", help="step counts at which to grade samples")
    ap.add_argument("--ar-start", type=int, default=200, help="the AR checkpoint the adapted MDM starts from")
    ap.add_argument("--anneal", type=int, default=100, help="steps of causal -> bidirectional annealing")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n", type=int, default=64, help="stories sampled at each stop")
    ap.add_argument("--note", default=None, help="what else ran on the machine, for the JSON")
    ap.add_argument("--json", default="benchmarks/results/valid_vs_cpu.json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    stops = sorted({int(s) for s in a.stops.split(",")})
    if a.ar_start not in stops:
        raise SystemExit(f"--ar-start: expected one of --stops {stops}, got {a.ar_start}")
    total = stops[-1]
    common = dict(preset="nano", steps=total, batch_size=a.batch_size, warmup=50, eval_every=0,
                  eval_batches=4, ckpt_every=0, progress=False)
    root = Path(tempfile.mkdtemp(prefix="minidlm-valid-vs-cpu-"))
    t_start = time.time()
    ar_clock = {}

    def keep_start(stop, seconds):
        if stop == a.ar_start:
            ar_clock["seconds"] = seconds
            (root / "ar-start").mkdir()
            for f in (root / "ar").iterdir():
                if f.name.startswith("last") or f.name == "tokenizer.json":
                    (root / "ar-start" / f.name).write_bytes(f.read_bytes())

    arms = [{"name": "ar", "points": run_arm("ar", root / "ar", stops, a.n, 32,
                                              dict(objective="ar", lr=3e-3, **common), on_stop=keep_start)}]
    arms.append({"name": "mdm", "points": run_arm("mdm", root / "mdm", stops, a.n, 32,
                                                  dict(objective="mdm", lr=3e-3, **common))})
    adapt = dict(objective="mdm", lr=1e-3, init_from=str(root / "ar-start"), anneal_steps=a.anneal,
                 model_overrides={"shift_logits": True}, **common)
    arms.append({"name": f"mdm-from-ar (AR {a.ar_start} steps first)",
                 "points": run_arm("mdm-from-ar", root / "adapt", stops, a.n, 32, adapt,
                                   clock0=ar_clock["seconds"])})
    floor_path = Path(__file__).resolve().parent / "results" / "tales_floor.json"
    floor = json.loads(floor_path.read_text())["floor"]["nats_per_token"] if floor_path.exists() else None
    result = {"stops": stops, "ar_start": a.ar_start, "anneal": a.anneal, "batch_size": a.batch_size, "n": a.n,
              "sampler": "AR: left to right; MDM: low_confidence, T = 32 of L = 64, length first", "threads": 1,
              "floor": floor, "note": a.note, "arms": arms, "seconds_total": time.time() - t_start,
              "command": "python benchmarks/valid_vs_cpu.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k not in ("json", "note")),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
