"""Grade plausible wrong answers ("mutants") and show that each one loses points on its task.

Each ``tests/exercises/mutants/lessonNN.py`` holds ``MUTANTS = [(task, what, old, new), ...]``: a
mistake a learner could make, written as one text replacement in ``solutions/lessonNN_*.py`` (``old``
occurs there exactly once). The mutants are graded in rounds, one mutant per lesson file per round,
each round one grader run on a copy of solutions/; a mutant that still earns all its task's points
"survives", which means the task's tests would pass that wrong answer.

    python tests/exercises/mutants/run.py              # every lesson with mutants
    python tests/exercises/mutants/run.py lesson07     # one lesson
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


@dataclass
class Mutant:
    lesson: str          # "lesson07"
    task: str            # "7.5"
    what: str
    old: str
    new: str
    earned: float | None = None
    possible: float | None = None

    @property
    def survives(self) -> bool:
        return self.earned is not None and self.earned >= self.possible


def solution_file(lesson: str) -> Path:
    files = sorted((REPO / "solutions").glob(f"{lesson}_*.py"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one solutions/{lesson}_*.py, found {len(files)}")
    return files[0]


def load(lessons=None) -> list[Mutant]:
    """Every mutant of the given lessons (all lessons with a mutants file by default)."""
    out = []
    for path in sorted(HERE.glob("lesson*.py")):
        if lessons and path.stem not in lessons:
            continue
        spec = importlib.util.spec_from_file_location(f"_mutants_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        source = solution_file(path.stem).read_text()
        for task, what, old, new in mod.MUTANTS:
            n = source.count(old)
            if n != 1 or old == new:
                raise ValueError(f"{path.name}, task {task} ({what}): the old text occurs {n} times in the "
                                 f"solution (expected exactly once), or old == new")
            out.append(Mutant(path.stem, task, what, old, new))
    return out


def rounds(mutants: list[Mutant]) -> list[list[Mutant]]:
    """Group the mutants so that a round holds at most one mutant per lesson file."""
    by_lesson: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_lesson.setdefault(m.lesson, []).append(m)
    n = max((len(v) for v in by_lesson.values()), default=0)
    return [[v[i] for v in by_lesson.values() if i < len(v)] for i in range(n)]


def grade(mutants: list[Mutant], timeout: float = 600) -> list[Mutant]:
    """Grade every mutant; fill in earned/possible of its task. Returns the mutants."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="minidlm-mutants-") as tmp:
        for r, group in enumerate(rounds(mutants)):
            folder = Path(tmp) / f"round{r}"
            shutil.copytree(REPO / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__", "answers"))
            for m in group:
                f = folder / solution_file(m.lesson).name
                f.write_text(f.read_text().replace(m.old, m.new))
            out = Path(tmp) / f"round{r}.json"
            tasks = ",".join(sorted({m.task for m in group}))
            proc = subprocess.run([sys.executable, "-m", "pytest", "tests/exercises", "-q", "-p", "no:cacheprovider",
                                   "--impl-path", str(folder), "--task", tasks, "--grade-json", str(out)],
                                  cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
            if not out.exists():
                raise RuntimeError("the grader wrote no grade:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
            grade_ = json.loads(out.read_text())
            for m in group:
                t = grade_["tasks"][m.task]
                m.earned, m.possible = t["earned"], t["possible"]
    return mutants


def main(argv=None) -> int:
    lessons = (argv if argv is not None else sys.argv[1:]) or None
    mutants = grade(load(lessons))
    for m in mutants:
        verdict = "SURVIVES" if m.survives else "caught"
        print(f"{m.task:>5}  {m.earned:5.1f}/{m.possible:<5.1f} {verdict:8}  {m.what}")
    survivors = [m for m in mutants if m.survives]
    print(f"{len(mutants)} mutants, {len(survivors)} survive")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
