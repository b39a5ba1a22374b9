"""The pytest plugin that grades the course's exercises (loaded by ``tests/conftest.py``).

One test tree grades any implementation of the lessons (the CS336 "adapter" idea):

    python -m pytest tests/exercises                       # solutions/ (the default; CI)
    python -m pytest tests/exercises --impl=exercises      # the stubs shipped to learners (0%)
    python -m pytest tests/exercises --impl-path ~/alice   # a learner's copied folder
    python -m pytest tests/exercises --task 3.1 --task 3.2 # only some tasks (or: -m task3_1)
    python -m pytest tests/exercises --grade-json out.json # the grade as JSON

Tests reach the learner's code only through the ``load`` fixture: ``load("lesson03_information")``
imports ``<impl dir>/lesson03_information.py`` by its file path, so a learner's folder needs no
``__init__.py`` and no install. Collection never imports a learner's file.

Every graded test carries ``@pytest.mark.task("3.1", points=1)``. A task is worth the sum of its
tests' points and is ALL OR NOTHING: its points are earned only when every one of its tests passes
(a task that half works is not yet done; the per-test lines still show the progress).

Isolation (isolation.py): the pytest process started by the instructor (the parent) runs each
lesson's graded tests in a child process of its own, kills a child that runs past the time limit,
and alone computes the grade and writes the table and ``--grade-json`` (deleting an old file
first). A file that exits, loops, kills its process or tampers costs only its own lesson's tests.
Inside a child, guard.py fails a test whose code replaced minidlm / torch / test / grader
functions (``Tampered``) or whose function calls minidlm's own reference (``Delegated``).
Tests that are not graded run in the parent as usual.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from tests.exercises import guard, isolation

REPO = Path(__file__).resolve().parents[2]
IMPLS = ("solutions", "exercises")
DEFAULT_TIMEOUT = 30.0

try:  # shared Hypothesis settings for graded property tests (see GRADED below)
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as _hypothesis_seed

    # deadline=None: slow laptops must not fail; derandomize: the same examples on every run (a
    # grade must not depend on luck); database=None: nothing is written into the learner's folder;
    # no shrink phase: the inputs are small already (Hypothesis tries the simplest first) and
    # shrinking would re-run a failing test ~200 times, so a run of unsolved stubs stays fast.
    GRADED = settings(deadline=None, max_examples=20, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.reuse, Phase.generate],
                      suppress_health_check=[HealthCheck.too_slow])
except ImportError:  # pragma: no cover - hypothesis is part of the test extra
    GRADED = None
    _hypothesis_seed = None

# Captured at import, before any learner code: replacing signal.signal cannot disarm the time limit.
_HAS_ALARM = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
_signal = signal.signal
_setitimer = getattr(signal, "setitimer", None)

_LIMIT_KEY = pytest.StashKey[float]()    # a graded test's time limit, enforced by our alarm
_RESULTS_KEY = pytest.StashKey[dict]()   # nodeid -> what happened to that graded test
_SELECTED_KEY = pytest.StashKey[dict]()  # nodeid -> (task, points) of the graded tests selected
_REPLAY_KEY = pytest.StashKey[dict]()    # nodeid -> the reports its child process sent


# ----------------------------------------------------------------------------- options, markers
def pytest_addoption(parser):
    group = parser.getgroup("minidlm grading")
    group.addoption("--impl", choices=IMPLS, default="solutions",
                    help="which folder of the repository the graded tests load (default: solutions)")
    group.addoption("--impl-path", default=None, metavar="DIR",
                    help="grade the lesson files in DIR instead (a learner's copy of exercises/)")
    group.addoption("--task", action="append", default=[], metavar="N.M",
                    help="run only these tasks (repeat, or comma-separate: --task 2.1,2.2)")
    group.addoption("--grade-json", default=None, metavar="PATH",
                    help="write the grade (points per task, failures with exception types) to PATH; "
                         "an existing file is deleted when the run starts")
    group.addoption("--grade-seed", type=int, default=None, metavar="N",
                    help="draw other random examples: seeds Hypothesis and the `grade_seed` fixture "
                         "(default: a fixed derandomized set, identical on every run)")
    group.addoption("--grade-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"per-test time limit for graded tests (default {DEFAULT_TIMEOUT:g})")
    group.addoption("--grade-isolation", choices=("process", "off"), default="process",
                    help="process (default): each lesson's graded tests run in a child process; "
                         "off: in the pytest process itself (for debugging, e.g. with --pdb)")
    group.addoption("--grade-jobs", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                    help="lessons graded at the same time (default: 2, or 1 on one core)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "task(id, points=1): a graded test of exercise task `id` (\"N.M\"), worth `points`; "
                   "also selectable as -m taskN_M")
    config.addinivalue_line(
        "markers", "allow_minidlm: a graded test that hands minidlm objects to the learner's code, "
                   "so calls into minidlm do not count as delegation")
    config.stash[_RESULTS_KEY] = {}
    config.pluginmanager.register(_Recorder(config), "minidlm-grade-recorder")
    path = config.getoption("grade_json")
    if path and Path(path).is_file():     # a crash must never leave an earlier grade in place
        Path(path).unlink()


def task_of(item) -> tuple[str, float] | None:
    """(task id, points) of a graded test, from ``task("2.1", points=P)`` or ``task(2, 1, points=P)``."""
    mark = item.get_closest_marker("task")
    if mark is None:
        return None
    args = mark.args
    if len(args) == 1:
        tid = str(args[0])
    elif len(args) == 2:
        tid = f"{args[0]}.{args[1]}"
    else:
        raise pytest.UsageError(f"{item.nodeid}: expected @pytest.mark.task('N.M', points=P), got args {args}")
    return tid, float(mark.kwargs.get("points", 1))


def _task_sort_key(tid: str):
    return tuple(int(p) if p.isdigit() else p for p in tid.split("."))


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m / -k deselection
def pytest_collection_modifyitems(session, config, items):
    wanted = {t.strip() for opt in config.getoption("task") for t in opt.split(",") if t.strip()}
    seed = config.getoption("grade_seed")
    keep, drop = [], []
    for item in items:
        info = task_of(item)
        if info is None:
            keep.append(item)
            continue
        tid, _ = info
        # a marker per task, so that `-m task2_1` works too
        name = "task" + tid.replace(".", "_")
        config.addinivalue_line("markers", f"{name}: graded tests of task {tid}")
        item.add_marker(name)
        if item.get_closest_marker("timeout") is None:
            if _HAS_ALARM:  # our own alarm (below); switch pytest-timeout off for this test
                item.stash[_LIMIT_KEY] = config.getoption("grade_timeout")
                item.add_marker(pytest.mark.timeout(0))
            else:           # no SIGALRM (Windows): pytest-timeout's thread method is what there is
                item.add_marker(pytest.mark.timeout(config.getoption("grade_timeout")))
        if seed is not None and _hypothesis_seed is not None and hasattr(item, "obj") \
                and getattr(item.obj, "is_hypothesis_test", False):
            _hypothesis_seed(seed)(item.obj)
        (keep if not wanted or tid in wanted else drop).append(item)
    if wanted:
        unknown = wanted - {task_of(i)[0] for i in keep if task_of(i)}
        if unknown:
            print(f"\nminidlm grading: no graded tests for task(s) {sorted(unknown, key=_task_sort_key)}")
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def pytest_collection_finish(session):
    selected = {}
    for item in session.items:
        info = task_of(item)
        if info is not None:
            selected[item.nodeid] = info
    session.config.stash[_SELECTED_KEY] = selected  # nodeid -> (task, points)


# ----------------------------------------------------------------------------- isolation
def _isolating(config) -> bool:
    return config.getoption("grade_isolation") == "process" and isolation.available()


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    """Before the loop: run every graded test in child processes (or arm the guard in-process)."""
    config = session.config
    collect_failed = session.testsfailed and not config.option.continue_on_collection_errors
    graded = [item for item in session.items if task_of(item)]
    if graded and not config.option.collectonly and not collect_failed and not isolation.in_child():
        if _isolating(config):
            config.stash[_REPLAY_KEY] = isolation.run_graded(
                session, graded, jobs=config.getoption("grade_jobs"),
                timeout=config.getoption("grade_timeout"), task_of=task_of)
        else:
            guard.arm(extra_modules={i.module for i in graded if getattr(i, "module", None) is not None})
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """In the parent, a graded test is not run: the reports its child sent are logged instead."""
    reports = item.config.stash.get(_REPLAY_KEY, {}).pop(item.nodeid, None)
    if reports is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


# ----------------------------------------------------------------------------- running a test
class Timeout(BaseException):
    """A graded test ran past --grade-timeout. A BaseException, so that Hypothesis does not catch
    it and re-run the example (pytest-timeout's single alarm would not fire a second time)."""


GradeTimeout = Timeout  # the name before the isolation (kept for hidden tests that import it)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    info = task_of(item)
    if info is None:
        return (yield)
    guard.set_current(info[0], allow_minidlm=item.get_closest_marker("allow_minidlm") is not None)
    try:
        with _time_limit(item.stash.get(_LIMIT_KEY, None)):
            result = yield
    except guard.Tampered:
        raise
    except BaseException:
        guard.check_integrity("during the test")    # tampering explains the failure better
        raise
    guard.check_integrity("during the test")
    return result


@contextlib.contextmanager
def _time_limit(limit):
    """Raise Timeout in the main thread after ``limit`` s, and again every 0.25 s until the test
    ends (a loop that swallows the first one gets the next; one that swallows them all is killed
    with its child process by the parent)."""
    if not limit or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise Timeout(f"Timeout: the test ran past {limit:g} s (an infinite loop?)")

    previous = _signal(signal.SIGALRM, on_alarm)
    _setitimer(signal.ITIMER_REAL, limit, 0.25)
    try:
        yield
    finally:
        _setitimer(signal.ITIMER_REAL, 0)
        _signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------- the adapter
def impl_dir(config) -> Path:
    path = config.getoption("impl_path")
    return Path(path).expanduser().resolve() if path else REPO / config.getoption("impl")


def load_lesson(folder: Path, name: str):
    """Import ``folder/<name>.py`` by path (``name`` may be just "lesson03": the file is found by
    its prefix). Each folder gets its own module names, so two folders never mix."""
    folder = Path(folder)
    path = folder / f"{name}.py"
    if not path.exists():
        found = sorted(folder.glob(f"{name}_*.py"))
        if len(found) != 1:
            raise FileNotFoundError(f"no lesson file {name}.py in {folder}")
        path = found[0]
    tag = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    modname = f"_minidlm_impl_{tag}_{path.stem}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module          # dataclasses and pickling look modules up here
    isolation.note_import(path.name, "begin")
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)     # a broken file fails every test that loads it, not once
        _import_intact(path.name)          # tampering explains the failure better
        raise
    finally:
        isolation.note_import(path.name, "end")
    _import_intact(path.name, modname)
    return module


def _import_intact(filename: str, modname: str | None = None) -> None:
    """Raise Tampered if importing the lesson file replaced something (then every test of the
    lesson fails: each would import it again)."""
    try:
        guard.check_integrity(f"while {filename} was imported")
    except guard.Tampered:
        if modname:
            sys.modules.pop(modname, None)
        isolation.stop_lesson()
        raise


@pytest.fixture(scope="session")
def impl_path(request) -> Path:
    """The folder of lesson files being graded."""
    return impl_dir(request.config)


@pytest.fixture(scope="session")
def load(impl_path):
    """``load("lesson03_information")`` -> the graded implementation's module of that lesson, its
    functions watched by guard.py (no calls into minidlm, nothing replaced)."""
    return lambda name: guard.LessonProxy(load_lesson(impl_path, name))


@pytest.fixture(scope="session")
def grade_seed(request) -> int:
    """A seed for tests that draw their own random inputs; ``--grade-seed`` changes it."""
    seed = request.config.getoption("grade_seed")
    return 0 if seed is None else seed


# ----------------------------------------------------------------------------- recording
def _exception_types(exc) -> list[str]:
    """The exception's type name; for an exception group, the types of its leaves."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        return [n for e in inner for n in _exception_types(e)]
    return [type(exc).__name__]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Where the test ran: attach what the grade needs (``report.grade_error``) to a failure. It
    travels with the report from a child process to the parent."""
    report = yield
    if report.failed and task_of(item) is not None:
        exc = call.excinfo.value if call.excinfo is not None else None
        message = str(exc).strip() if exc is not None else ""
        report.grade_error = {
            "when": call.when,
            "type": call.excinfo.typename if call.excinfo is not None else "unknown",
            "types": _exception_types(exc) if exc is not None else ["unknown"],
            "message": message.splitlines()[0][:300] if message else "",
            "detail": report.longreprtext[-2000:],
        }
    return report


class _Recorder:
    """Records each graded report (in the parent: the ones replayed from the children); in a child,
    sends it to the parent instead. Registered per run by pytest_configure."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        if isolation.in_child():
            isolation.emit_report(report)
            return
        info = self.config.stash.get(_SELECTED_KEY, {}).get(report.nodeid)
        if info is None:
            return
        results = self.config.stash[_RESULTS_KEY]
        rec = results.setdefault(report.nodeid, {"test": report.nodeid, "task": info[0], "points": info[1],
                                                 "outcome": "passed", "errors": []})
        if report.skipped and report.when in ("setup", "call"):
            rec["outcome"] = "skipped"
        elif report.failed:
            rec["outcome"] = "failed" if report.when == "call" else "error"
            err = getattr(report, "grade_error", None) or {
                "when": report.when, "type": "unknown", "types": ["unknown"], "message": "",
                "detail": getattr(report, "longreprtext", "")[-2000:]}
            rec["errors"].append(dict(err))


def grade(config) -> dict:
    """Points per task from the recorded results: a task earns its points when all its tests passed."""
    selected = config.stash.get(_SELECTED_KEY, {})
    results = config.stash.get(_RESULTS_KEY, {})
    tasks: dict[str, dict] = {}
    for nodeid, (tid, points) in selected.items():
        t = tasks.setdefault(tid, {"earned": 0.0, "possible": 0.0, "passed": 0, "failed": 0,
                                   "skipped": 0, "not_run": 0, "errors": []})
        t["possible"] += points
        rec = results.get(nodeid)
        if rec is None:
            t["not_run"] += 1
        elif rec["outcome"] == "passed":
            t["passed"] += 1
        elif rec["outcome"] == "skipped":
            t["skipped"] += 1
        else:
            t["failed"] += 1
            for e in rec["errors"]:
                t["errors"].append({"test": nodeid, **{k: e[k] for k in ("when", "type", "types", "message")}})
    for t in tasks.values():
        done = t["passed"] > 0 and t["failed"] == t["skipped"] == t["not_run"] == 0
        t["earned"] = t["possible"] if done else 0.0
    tasks = dict(sorted(tasks.items(), key=lambda kv: _task_sort_key(kv[0])))
    total = sum(t["earned"] for t in tasks.values())
    possible = sum(t["possible"] for t in tasks.values())
    return {"impl": str(impl_dir(config)), "seed": config.getoption("grade_seed"),
            "isolation": "process" if _isolating(config) else "off",
            "total": total, "possible": possible,
            "percent": round(100.0 * total / possible, 1) if possible else 0.0,
            "tasks": tasks,
            "tests": [results.get(n, {"test": n, "task": tid, "points": p, "outcome": "not_run", "errors": []})
                      for n, (tid, p) in selected.items()]}


def _write_json(path: str, data: dict) -> None:
    """Write ``data`` so that a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.getoption("collectonly") or isolation.in_child():
        return
    g = grade(config)
    path = config.getoption("grade_json")
    if path:  # written even when nothing was selected, so a caller can tell "no tests" from "crashed"
        _write_json(path, g)
    if not config.stash.get(_SELECTED_KEY, None):
        return
    tr = terminalreporter
    tr.section("minidlm grade")
    tr.write_line(f"implementation: {g['impl']}")
    tr.write_line(f"{'task':>6}  {'points':>9}  {'tests':>7}  first problem")
    for tid, t in g["tasks"].items():
        tests = f"{t['passed']}/{t['passed'] + t['failed'] + t['skipped'] + t['not_run']}"
        problem = ""
        if t["errors"]:
            e = t["errors"][0]
            problem = f"{e['type']}: {e['message']}"[:70]
        tr.write_line(f"{tid:>6}  {t['earned']:>4g} / {t['possible']:<3g} {tests:>7}  {problem}")
    tr.write_line(f"{'total':>6}  {g['total']:>4g} / {g['possible']:<3g}  {g['percent']}%")
    if path:
        tr.write_line(f"grade written to {path}")
