"""How long a learner waits for ``minidlm.grading.check(task)``, for every task.

    python benchmarks/check_speed.py [--json benchmarks/results/check_speed.json] [--warm 3]
                                     [--tasks 2.1,7.1] [--path solutions]

One thread (OMP_NUM_THREADS=1, as on a learner's busy laptop). For each task:

  first_s   the first check of a notebook kernel: starts the warm helper process (torch, pytest
            and the tests imported once), then checks; measured after stopping the helper, so
            every task's first call is a real first call;
  warm_s    the next ``--warm`` checks of the same task (each forks a fresh copy of the helper):
            the median, and all of them in ``warm_all_s``;
  notebook_*  a notebook kernel: importing minidlm.grading starts the helper in the background
            (``warm_up``) while the learner reads; the time until it is ready, and the first check
            after that (of the first task);
  subprocess_s  (only with --subprocess) one check with MINIDLM_CHECK_WORKER=0: a new
            ``python -m pytest`` per check, what every check cost before the helper (and what
            Windows still does).

The folder checked is ``--path`` (default: solutions/, so every test passes and runs to the end;
a stub fails at its first example and is faster). The target: warm checks <= 2 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"          # before torch is imported anywhere (the helper inherits it)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def all_tasks() -> list[str]:
    tasks = []
    for f in sorted((REPO / "solutions").glob("lesson*.py")):
        tasks += re.findall(r'"""Task (\d+\.\d+):', f.read_text())
    return sorted(tasks, key=lambda t: tuple(int(p) for p in t.split(".")))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "check_speed.json"))
    ap.add_argument("--warm", type=int, default=3, help="warm checks per task (default 3)")
    ap.add_argument("--tasks", default="", help="comma-separated task ids (default: all 31)")
    ap.add_argument("--path", default=str(REPO / "solutions"), help="the folder of lesson files checked")
    ap.add_argument("--subprocess", action="store_true", help="also time one check without the helper")
    args = ap.parse_args(argv)

    from minidlm import grading

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] or all_tasks()
    rows = []
    for task in tasks:
        grading._stop_worker()
        first, ok = timed(lambda: grading.check(task, path=args.path, show=False))
        warm = [timed(lambda: grading.check(task, path=args.path, show=False))[0] for _ in range(args.warm)]
        row = {"task": task, "passed": bool(ok), "first_s": round(first, 2),
               "warm_s": round(statistics.median(warm), 2) if warm else None,
               "warm_all_s": [round(w, 2) for w in warm]}
        if args.subprocess:
            os.environ["MINIDLM_CHECK_WORKER"] = "0"
            row["subprocess_s"] = round(timed(lambda: grading.check(task, path=args.path, show=False))[0], 2)
            del os.environ["MINIDLM_CHECK_WORKER"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    grading._stop_worker()
    # a notebook: importing minidlm.grading in a kernel starts the helper (warm_up) while the learner
    # reads; once it is ready, the lesson's first check costs what a warm one does
    start = time.perf_counter()
    grading.warm_up()
    while grading._WORKER is None and time.perf_counter() - start < 120:
        time.sleep(0.05)
    with grading._WORKER_LOCK:
        ready_s = time.perf_counter() - start
    notebook_first, _ = timed(lambda: grading.check(tasks[0], path=args.path, show=False))
    grading._stop_worker()
    warm_all = [r["warm_s"] for r in rows if r["warm_s"] is not None]
    result = {
        "what": "seconds per minidlm.grading.check(task) call; first = with the helper's start",
        "threads": 1, "path": args.path, "cpus": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "load_average_at_start": list(os.getloadavg()),
        "summary": {"warm_max_s": max(warm_all, default=None),
                    "warm_median_s": statistics.median(warm_all) if warm_all else None,
                    "first_median_s": statistics.median([r["first_s"] for r in rows]) if rows else None,
                    "notebook_warm_up_s": round(ready_s, 2), "notebook_first_check_s": round(notebook_first, 2),
                    "tasks_over_2s_warm": [r["task"] for r in rows if (r["warm_s"] or 0) > 2.0]},
        "tasks": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
