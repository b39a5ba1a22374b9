"""How many CPU threads for a tiny model? One forward pass of the shipped nano MDM, timed with 1
and 2 torch threads, at batch 1 (sampling one story) and batch 64 (training), on an idle machine
and with one other busy process (a shared laptop, a CI runner, a notebook beside a training run).

    python benchmarks/threads.py --json benchmarks/results/threads_cpu.json

Medians of repeated calls, all measured in one run so the ratios compare like with like. The
headline is the slowdown of 2 threads against 1 when another process is busy: OpenMP threads that
wait for each other at every barrier lose their core to the other process. Issue 14.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import torch

from minidlm.checkpoint import load_model
from minidlm.data import DATA_DIR


def _busy(stop):
    while not stop.is_set():
        pass


def median_ms(model, x, repeats: int) -> float:
    with torch.no_grad():
        for _ in range(3):
            model(x)                                      # warm-up
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            ts.append(time.perf_counter() - t0)
    ts.sort()
    return 1000 * ts[len(ts) // 2]


def measure(model, repeats: int) -> dict:
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for B in (1, 64):
            x = torch.randint(4, model.config.vocab_size, (B, model.config.max_len),
                              generator=torch.Generator().manual_seed(0))
            out[f"threads{threads}_B{B}_ms"] = round(median_ms(model, x, repeats), 3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--json", default="benchmarks/results/threads_cpu.json")
    a = ap.parse_args()
    if a.repeats < 1:
        raise SystemExit("--repeats: expected at least 1")
    model, _ = load_model(DATA_DIR / "checkpoints" / "tales-mdm-nano")
    res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
           "model": "tales-mdm-nano", "params": model.num_params(), "seq_len": model.config.max_len,
           "repeats": a.repeats, "command": "python benchmarks/threads.py"}
    res["idle"] = measure(model, a.repeats)
    stop = mp.Event()
    other = mp.Process(target=_busy, args=(stop,), daemon=True)
    other.start()
    try:
        res["one_busy_process"] = measure(model, a.repeats)
    finally:
        stop.set()
        other.join(timeout=5)
    for cond in ("idle", "one_busy_process"):
        r = res[cond]
        for B in (1, 64):
            r[f"two_over_one_B{B}"] = round(r[f"threads2_B{B}_ms"] / r[f"threads1_B{B}_ms"], 2)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
