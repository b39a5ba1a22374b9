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
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["check", "exercise_folder", "repo_root"]

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
        out = Path(tmp) / "grade.json"
        cmd = [sys.executable, "-m", "pytest", "tests/exercises", "--task", task, "--impl-path", str(folder),
               "--grade-json", str(out), "-q", "-p", "no:cacheprovider", "--no-header"]
        try:
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"Task {task}: the tests did not finish within {timeout:g} s (an infinite loop?)")
            return False
        if not out.exists():
            print(f"Task {task}: the grader did not run (exit code {proc.returncode}).")
            print((proc.stdout + proc.stderr)[-3000:])
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
