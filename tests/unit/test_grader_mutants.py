"""The graded tests catch plausible wrong answers: every mutant in tests/exercises/mutants (a
learner's mistake written as one edit of a solution) loses points on its task, and every
whole-algorithm task (16 points) is attacked by at least three mutants."""
import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("mutants_run", REPO / "tests/exercises/mutants/run.py")
run = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = run                  # dataclasses look their module up here
spec.loader.exec_module(run)


def _task_points() -> dict[str, int]:
    points: dict[str, int] = {}
    for f in (REPO / "tests/exercises").glob("test_lesson*.py"):
        for tid, p in re.findall(r'mark\.task\("([\d.]+)", points=(\d+)\)', f.read_text()):
            points[tid] = points.get(tid, 0) + int(p)
    return points


def test_whole_algorithm_tasks_carry_half_the_points_and_each_has_mutants():
    points = _task_points()
    whole = {t for t, p in points.items() if p >= 16}
    assert len(whole) >= 8, sorted(whole)
    assert sum(points[t] for t in whole) * 2 >= sum(points.values()), points
    counts = {}
    for m in run.load():
        counts[m.task] = counts.get(m.task, 0) + 1
    thin = {t: counts.get(t, 0) for t in whole if counts.get(t, 0) < 3}
    assert not thin, f"whole-algorithm tasks with fewer than 3 mutants: {thin}"


def test_every_mutant_loses_points_on_its_task():
    mutants = run.grade(run.load())
    assert mutants
    survivors = [(m.task, m.what, f"{m.earned}/{m.possible}") for m in mutants if m.survives]
    assert not survivors, f"the tests of these tasks pass a wrong answer: {survivors}"
