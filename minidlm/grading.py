"""Check one exercise task from a notebook: ``check("2.1")`` (every lesson).

The check cell runs exactly the tests the course grader runs (``tests/exercises``, selected with
``--task``) on YOUR lesson files, in a fresh Python process, so a stale import in the notebook's
kernel can never hide a bug (or a fix). It prints one line per test and returns True when the
task passes::

    from minidlm.grading import check
    check("2.1")                      # your exercises folder, found as described below
    check("2.1", path="~/my_copy")    # a folder you choose

Which folder is graded (``path=None``), first match wins:
  1. the environment variable ``MINIDLM_EXERCISES``;
  2. the notebook's working directory, if it holds lesson files (``lessonNN_*.py``);
  3. ``exercises/`` next to ``notebooks/`` in the course repository.

The graded tests live in the repository (found from this package's location), so the package
must be installed from a checkout of the course (``pip install -e .``), not from a wheel.

Speed: on Linux and macOS a warm helper process (``tests/exercises/check_worker.py``: torch,
pytest and the tests imported once, which takes a few seconds) starts in the background as soon
as a notebook imports this module, while you read; every check forks a fresh copy of it, so it
starts clean and takes about a second (``benchmarks/check_speed.py``). The helper never runs your code itself and ends with the
kernel. Set ``MINIDLM_CHECK_WORKER=0`` to start a new ``python -m pytest`` for every check instead
(what Windows always does).
"""
from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["check", "exercise_folder", "repo_root", "warm_up"]

_TASK = re.compile(r"^\d+\.\d+$")


def repo_root() -> Path:
    """The course repository: the folder above this package that holds tests/exercises."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "exercises" / "grading_plugin.py").exists():
        raise FileNotFoundError(
            f"tests/exercises not found next to the minidlm package ({root}); install minidlm from a "
            "checkout of the course repository with `pip install -e .` to use check()")
    return root


def exercise_folder(path=None) -> Path:
    """The folder of lesson files ``check`` grades (see the module docstring for the order)."""
    if path is not None:
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir():
            raise ValueError(f"path: expected a folder of lesson files, got {path!r} (not a folder)")
        return folder
    env = os.environ.get("MINIDLM_EXERCISES")
    if env:
        return exercise_folder(env)
    cwd = Path.cwd()
    if any(cwd.glob("lesson[0-9][0-9]_*.py")):
        return cwd.resolve()
    return repo_root() / "exercises"


def _failure_lines(detail: str, limit: int = 8) -> list[str]:
    """The assertion's own lines ("E ..." in pytest's report), without the noisy '+ where' ones."""
    out = []
    for line in detail.splitlines():
        if not line.startswith("E "):
            continue
        text = line[1:].strip()
        if not text or text.startswith("+") or text.startswith("load="):
            continue
        out.append(text)
        if len(out) == limit:
            break
    return out


class _Worker:
    """The warm helper process (tests/exercises/check_worker.py) and its JSON-lines pipe."""

    START_LIMIT_S = 180.0

    def __init__(self, root: Path):
        self.root, self.stamp = root, _source_stamp(root)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.exercises.check_worker"], cwd=root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        ready = self._reply(self.START_LIMIT_S)
        if not ready or not ready.get("ready"):
            self.close()
            raise RuntimeError("the check helper did not start")

    def fresh(self) -> bool:
        return self.proc.poll() is None and _source_stamp(self.root) == self.stamp

    def run(self, args: list, log: Path, timeout: float) -> dict:
        self.proc.stdin.write(json.dumps({"args": args, "log": str(log), "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        reply = self._reply(timeout + 30.0)
        if reply is None:
            self.close()
            raise RuntimeError("the check helper stopped answering")
        return reply

    def _reply(self, limit: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        line = self.proc.stdout.readline() if ready else ""
        return json.loads(line) if line.strip() else None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


def _source_stamp(root: Path) -> float:
    """The newest modification time of the grader's and minidlm's sources: the helper restarts
    when they change (it imported them once)."""
    files = [*(root / "tests" / "exercises").glob("*.py"), *(root / "minidlm").glob("*.py"),
             root / "tests" / "conftest.py"]
    return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)


def _use_worker() -> bool:
    return hasattr(os, "fork") and os.environ.get("MINIDLM_CHECK_WORKER", "1") != "0"


def _stop_worker() -> None:
    """End the helper process (the next check starts a new one)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is not None:
            _WORKER.close()
            _WORKER = None


atexit.register(_stop_worker)


def warm_up() -> None:
    """Start the helper process in the background (done on import in a notebook kernel), so that
    the lesson's first ``check`` does not wait for torch and pytest to import."""
    if not _use_worker():
        return

    def start():
        global _WORKER
        with _WORKER_LOCK:
            if _WORKER is None:
                try:
                    _WORKER = _Worker(repo_root())
                except (OSError, RuntimeError, ValueError):
                    _WORKER = None               # check() falls back to a new process

    threading.Thread(target=start, name="minidlm-check-warm-up", daemon=True).start()


def _run_pytest(root: Path, args: list, log: Path, timeout: float) -> tuple[int | None, bool]:
    """Run pytest with ``args``: in a fork of the warm helper when possible, else in a new process.
    Returns (exit code, timed out)."""
    global _WORKER
    if _use_worker():
        with _WORKER_LOCK:
            try:
                if _WORKER is None or not _WORKER.fresh():
                    if _WORKER is not None:
                        _WORKER.close()
                    _WORKER = _Worker(root)
                reply = _WORKER.run(args, log, timeout)
                return reply.get("rc"), bool(reply.get("timed_out"))
            except (OSError, RuntimeError, ValueError):
                _WORKER = None               # fall back to a new process below
    cmd = [sys.executable, "-m", "pytest", *args]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, True
    log.write_text(proc.stdout + proc.stderr)
    return proc.returncode, False


def check(task: str, path=None, *, timeout: float = 300.0, show: bool = True) -> bool:
    """Run the graded tests of one task (e.g. ``"3.1"``) on a folder of lesson files.

    Prints a line per test (PASS / FAIL with the first lines of the failure) and the points, and
    returns True when every test of the task passed.
    """
    task = str(task).strip()
    if not _TASK.match(task):
        raise ValueError(f"task: expected a task id like '2.1', got {task!r}")
    root = repo_root()
    folder = exercise_folder(path)
    with tempfile.TemporaryDirectory(prefix="minidlm-check-") as tmp:
        out, log = Path(tmp) / "grade.json", Path(tmp) / "pytest.log"
        args = ["tests/exercises", "--task", task, "--impl-path", str(folder), "--grade-json", str(out),
                "-q", "-p", "no:cacheprovider", "--no-header"]
        rc, timed_out = _run_pytest(root, args, log, timeout)
        if timed_out:
            print(f"Task {task}: the tests did not finish within {timeout:g} s (an infinite loop?)")
            return False
        if not out.exists():
            print(f"Task {task}: the grader did not run (exit code {rc}).")
            print(log.read_text()[-3000:] if log.exists() else "")
            return False
        grade = json.loads(out.read_text())
    tests = [t for t in grade["tests"] if t["task"] == task]
    if not tests:
        print(f"Task {task}: there are no graded tests for this task (check the number).")
        return False
    info = grade["tasks"][task]
    passed = all(t["outcome"] == "passed" for t in tests)
    if show:
        print(f"Task {task} -- {folder}")
        for t in tests:
            name = t["test"].split("::")[-1]
            if t["outcome"] == "passed":
                print(f"  PASS  {name}")
                continue
            print(f"  FAIL  {name}")
            for e in t["errors"][:1]:
                if "NotImplementedError" in e.get("types", [e["type"]]):
                    print("        not written yet: the function still raises NotImplementedError")
                    continue
                lines = _failure_lines(e.get("detail", "")) or [f"{e['type']}: {e['message']}"]
                for line in lines:
                    print(f"        {line}")
        verdict = "passed" if passed else "not yet"
        print(f"Task {task}: {verdict} ({info['earned']:g} / {info['possible']:g} points)")
    return passed


if "ipykernel" in sys.modules:                   # a notebook: warm the helper while the learner reads
    warm_up()
