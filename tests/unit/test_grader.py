"""The exercise grader is not vacuous: the stubs score 0 (failing only by NotImplementedError), the
solutions score 100%, a learner's folder earns exactly the tasks it solves, an infinite loop costs
one task, and exercises/ is in sync with solutions/."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS, EXERCISES = REPO / "solutions", REPO / "exercises"


def _grade(tmp_path, *args, name="grade.json"):
    out = tmp_path / name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/exercises", "-q", "-p", "no:cacheprovider",
                           "--grade-json", str(out), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def _lessons():
    return sorted(p.name for p in SOLUTIONS.glob("lesson*.py"))


def test_stubs_earn_nothing_and_fail_only_by_NotImplementedError(tmp_path):
    g, proc = _grade(tmp_path, "--impl=exercises")
    assert g["total"] == 0 and g["possible"] > 0
    assert len(g["tasks"]) >= 16
    for tid, t in g["tasks"].items():
        assert t["passed"] == 0, f"task {tid}: a test passed against the stub, so it does not test the learner"
        assert t["failed"] > 0 and t["errors"], tid
        for e in t["errors"]:
            assert e["types"] == ["NotImplementedError"], (tid, e)
            assert e["message"] == f"Task {tid}", (tid, e)      # each stub raises its own task id


def test_solutions_earn_everything(tmp_path):
    g, proc = _grade(tmp_path, "--impl=solutions")
    failures = {tid: t["errors"] for tid, t in g["tasks"].items() if t["earned"] != t["possible"]}
    assert not failures, failures
    assert g["total"] == g["possible"] > 0 and g["percent"] == 100.0
    assert g["impl"] == str(SOLUTIONS)
    assert g["isolation"] == ("process" if hasattr(os, "fork") else "off")
    assert "minidlm grade" in proc.stdout and "100.0%" in proc.stdout


def test_a_learner_folder_earns_exactly_the_lesson_it_solved(tmp_path):
    learner = tmp_path / "alice"
    shutil.copytree(EXERCISES, learner, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SOLUTIONS / "lesson03_information.py", learner / "lesson03_information.py")
    g, _ = _grade(tmp_path, "--impl-path", str(learner))
    assert g["impl"] == str(learner.resolve())
    earned = {tid for tid, t in g["tasks"].items() if t["earned"] > 0}
    assert earned == {tid for tid in g["tasks"] if tid.startswith("3.")} and earned
    assert g["total"] == sum(t["possible"] for tid, t in g["tasks"].items() if tid.startswith("3."))


def test_an_infinite_loop_fails_one_task_not_the_run(tmp_path):
    learner = tmp_path / "bob"
    shutil.copytree(SOLUTIONS, learner, ignore=shutil.ignore_patterns("__pycache__"))
    f = learner / "lesson06_attention.py"
    f.write_text(f.read_text().replace('    i = torch.arange(L)[:, None]       # (L, 1) query index',
                                       "    while True:\n        pass", 1))
    g, _ = _grade(tmp_path, "--impl-path", str(learner), "--task", "6.1,6.2", "--grade-timeout", "1")
    assert set(g["tasks"]) == {"6.1", "6.2"}
    assert g["tasks"]["6.1"]["earned"] == 0
    assert all("Timeout" in e["message"] and e["types"] == ["Timeout"] for e in g["tasks"]["6.1"]["errors"])
    assert g["tasks"]["6.2"]["earned"] == g["tasks"]["6.2"]["possible"] > 0


def test_task_selection_and_check_from_a_notebook(tmp_path, capsys):
    from minidlm.grading import check

    assert check("3.1", path=SOLUTIONS) is True
    assert check("3.1", path=EXERCISES) is False
    out = capsys.readouterr().out
    assert "PASS  test_entropy_worked_example" in out and "not written yet" in out
    assert check("99.9", path=SOLUTIONS) is False
    assert "no graded tests" in capsys.readouterr().out
    with pytest.raises(ValueError, match="^task:"):
        check("2")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the warm helper needs os.fork")
def test_the_warm_up_helper_outlives_the_thread_that_started_it(capsys):
    """A notebook's import starts the helper from a short-lived thread; the helper must keep serving
    (a parent-death signal tied to that thread would kill it the moment the thread ends)."""
    import time

    from minidlm import grading

    grading._stop_worker()
    grading.warm_up()
    deadline = time.monotonic() + 120
    while grading._WORKER is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with grading._WORKER_LOCK:
        worker = grading._WORKER
    assert worker is not None, "the helper did not start"
    time.sleep(0.5)
    assert worker.proc.poll() is None, f"the helper died (status {worker.proc.poll()})"
    try:
        assert grading.check("6.2", path=SOLUTIONS) is True
        assert grading._WORKER is worker                      # served by the warm helper, not a new one
    finally:
        grading._stop_worker()
    capsys.readouterr()


def test_exercises_are_generated_from_the_solutions():
    spec = importlib.util.spec_from_file_location("make_exercises", REPO / "tests" / "exercises" / "make_exercises.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.build(check=True) == [], "run: python tests/exercises/make_exercises.py"
    assert sorted(p.name for p in EXERCISES.glob("lesson*.py")) == _lessons()
