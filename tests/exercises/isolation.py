"""Run each lesson's graded tests in a child process of its own; the parent alone keeps the score.

The parent is the pytest process the instructor starts. It never imports a learner's file: before
its run loop, :func:`run_graded` forks one child per test file (= one lesson), at most ``jobs`` at
a time. A child puts itself in a new session (so the parent can kill it and everything it started
with one ``killpg``), runs its tests with pytest's normal protocol, and appends one JSON line per
event to a file of its own: a test started, a report (pytest's own serialized form), the lesson
file's import began or ended, the child stopped early. The parent reads these lines while it
waits and turns them back into pytest reports, so the terminal, ``-q``, the exit code, the table
and the JSON all agree.

Whatever a child does costs only tests of its own lesson:

* a test that runs past ``--grade-timeout`` and ignores the in-process alarm is killed with its
  process after a short grace: ``Timeout``;
* a child that exits (``os._exit``) or dies by a signal it was not sent by us: ``Exited`` /
  ``Killed``;
* a test that found tampering (see guard.py) stops its child, since the process can no longer be
  trusted: ``Tampered``.

The test that was running gets that failure; the other tests of its task are not run (a task is all
or nothing, so its points are lost already) and get the same type; the lesson's other tests run in a
fresh child. When the failure happened while the lesson file was being imported, every remaining
test of the lesson gets it, since each would import the file again.

Forking (rather than starting ``python -m pytest`` per lesson) reuses the parent's imports of torch,
pytest and the tests: a child starts in milliseconds, not seconds. Without ``os.fork`` (Windows)
the grader runs the tests in-process as before (see ``available``).
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from _pytest.reports import TestReport

from tests.exercises import guard

# Captured at import, before any learner code runs in this process.
_exit, _write, _fork, _setsid = os._exit, os.write, getattr(os, "fork", None), getattr(os, "setsid", None)
_killpg, _kill, _waitpid = getattr(os, "killpg", None), os.kill, getattr(os, "waitpid", None)

POLL_S = 0.01             # how often the parent looks at its children
START_LIMIT_S = 60.0      # from fork to the first test (the child only re-arms capture and the guard)
EXIT_GRACE_S = 5.0        # from the child's last line to its exit


def available() -> bool:
    """Whether this platform can fork children (not on Windows)."""
    return all(f is not None for f in (_fork, _setsid, _killpg, _waitpid))


def kill_grace(timeout: float) -> float:
    """How long past --grade-timeout the parent waits before it kills a test's process: the
    in-process alarm gets the first chance (it re-fires every 0.25 s)."""
    return min(5.0, max(1.0, 0.5 * timeout))


def kill_after(item, timeout: float) -> float:
    """Seconds from a test's start to its kill: its time limit (``--grade-timeout``, or a longer
    ``@pytest.mark.timeout(S)`` of a hidden test) plus the grace."""
    mark = item.get_closest_marker("timeout")
    own = (mark.args[0] if mark.args else mark.kwargs.get("timeout", 0)) if mark is not None else 0
    limit = max(timeout, float(own or 0))
    return limit + kill_grace(limit)


# ============================================================================= the child side
class _ChildState:
    """Set in a child only: where its lines go, and whether it must stop after the current test."""

    def __init__(self):
        self.fd: int | None = None
        self.config = None
        self.stop: str | None = None      # "task": this test's task is lost; "lesson": every test is


CHILD = _ChildState()


def in_child() -> bool:
    return CHILD.fd is not None


def emit(event: dict) -> None:
    """Append one event line to the child's result file (no-op outside a child)."""
    if CHILD.fd is None:
        return
    data = (json.dumps(event, default=str) + "\n").encode()
    while data:
        data = data[_write(CHILD.fd, data):]


def emit_report(report) -> None:
    """A finished test phase, in pytest's serialized form (the way pytest-xdist ships reports)."""
    config = CHILD.config
    emit({"ev": "report", "data": config.hook.pytest_report_to_serializable(config=config, report=report)})
    err = getattr(report, "grade_error", None)
    if err and "Tampered" in err["types"] and CHILD.stop is None:
        CHILD.stop = "task"


def note_import(filename: str, phase: str) -> None:
    """The lesson file's import begins / ends: a child that dies in between fails the whole lesson."""
    emit({"ev": "import", "file": filename, "phase": phase})


def stop_lesson() -> None:
    """Tampering found while the lesson file was imported: every test of the lesson would find it."""
    CHILD.stop = "lesson"


def die_with_parent(parent: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies, so that a child is never
    left running on its own (best effort; elsewhere the parent's kill is what there is)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))   # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        return
    if parent is not None and os.getppid() != parent:                    # it died before the prctl
        _exit(70)


def _child_main(session, items, fd: int, log_path: str, parent: int) -> None:
    """Run ``items`` in this (forked) process and report each event; never returns normally."""
    _setsid()                                   # a session (and process group) of its own
    if sys.platform.startswith("linux"):
        die_with_parent(parent)
    _fresh_output(session.config, log_path)
    if "torch" in sys.modules:                  # children run side by side: one thread each
        sys.modules["torch"].set_num_threads(1)
    CHILD.fd, CHILD.config = fd, session.config
    guard.arm(extra_modules={i.module for i in items if getattr(i, "module", None) is not None})
    for i, item in enumerate(items):
        emit({"ev": "start", "nodeid": item.nodeid})
        try:
            item.ihook.pytest_runtest_protocol(item=item, nextitem=items[i + 1] if i + 1 < len(items) else None)
        except BaseException as exc:            # pytest.exit() or KeyboardInterrupt from the learner's code
            emit({"ev": "abort", "type": type(exc).__name__, "message": _first_line(exc)})
            return
        emit({"ev": "end", "nodeid": item.nodeid})
        if CHILD.stop:
            emit({"ev": "stop", "scope": CHILD.stop})
            return
    emit({"ev": "finished"})


def _fresh_output(config, log_path: str) -> None:
    """Give the child its own capture files (the parent's are shared through fork), stdout to
    /dev/null (the child's own terminal reporter writes there) and stderr to a log."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()          # restores the parent's fds 1 and 2 in this process
    null = os.open(os.devnull, os.O_WRONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 1)
    os.dup2(log, 2)
    if capman is not None:
        capman.start_global_capturing()
        capman.suspend_global_capture()


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


# ============================================================================= the parent side
@dataclass
class _Run:
    """One child at work on some tests of one file, as the parent sees it."""

    items: list
    limits: dict                          # nodeid -> seconds from its start to its kill
    pid: int
    path: str
    log: str
    deadline: float
    fh: object = None
    buf: bytes = b""
    current: str | None = None            # the test started and not yet ended
    importing: str | None = None          # the lesson file being imported, if any
    reports: dict = field(default_factory=dict)
    ended: set = field(default_factory=set)
    abort: dict | None = None
    stop: str | None = None
    finished: bool = False
    killed: bool = False
    status: int | None = None


def run_graded(session, items, *, jobs: int, timeout: float, task_of) -> dict[str, list]:
    """Run the graded ``items`` in children, one per test file; return nodeid -> its TestReports."""
    limits = {item.nodeid: kill_after(item, timeout) for item in items}
    queue = deque(_by_file(items))
    out: dict[str, list] = {}
    running: list[_Run] = []
    tmp = tempfile.mkdtemp(prefix="minidlm-grade-")
    _warm_up()
    gc.collect()
    gc.freeze()      # the children share the parent's objects: keep their collector off those pages
    try:
        while queue or running:
            while queue and len(running) < max(1, jobs):
                running.append(_spawn(session, queue.popleft(), tmp, limits))
            time.sleep(POLL_S)
            for run in list(running):
                if _poll(run):
                    running.remove(run)
                    rerun = _settle(session.config, run, out, task_of)
                    if rerun:
                        queue.appendleft(rerun)
    finally:
        for run in running:
            _terminate(run)
        shutil.rmtree(tmp, ignore_errors=True)
        gc.unfreeze()
    return out


def _warm_up() -> None:
    """Do once in the parent the lazy imports that every child would otherwise repeat: the first
    torch.testing.assert_close imports torch.distributed.tensor (~1 s), Hypothesis's first run
    imports numpy.random."""
    try:
        import torch
        from hypothesis import given, settings, strategies

        torch.testing.assert_close(torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))

        @settings(max_examples=2, database=None, derandomize=True)
        @given(strategies.integers(0, 3), strategies.floats(0, 1))
        def warm(i, x):
            pass

        warm()
    except Exception:   # noqa: BLE001 - only an optimization
        pass


def _by_file(items) -> list[list]:
    groups: dict = {}
    for item in items:
        groups.setdefault(str(item.path), []).append(item)
    return list(groups.values())


def _spawn(session, items, tmp: str, limits: dict) -> _Run:
    fd, path = tempfile.mkstemp(prefix="events-", suffix=".jsonl", dir=tmp)
    log = path[:-len(".jsonl")] + ".log"
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = _fork()
    if pid == 0:                                 # the child: never returns into the parent's code
        try:
            _child_main(session, items, fd, log, parent)
        except BaseException as exc:             # the grader itself failed: say so, then leave
            try:
                traceback.print_exc()
                emit({"ev": "abort", "type": "GraderError", "message": f"{type(exc).__name__}: {_first_line(exc)}"})
            finally:
                _exit(70)
        _exit(0)
    os.close(fd)
    run = _Run(items=items, limits={i.nodeid: limits[i.nodeid] for i in items}, pid=pid, path=path, log=log,
               deadline=time.monotonic() + START_LIMIT_S)
    run.fh = open(path, "rb")
    return run


def _poll(run: _Run) -> bool:
    """Read the child's new lines; reap it if it ended, kill it if it is past its deadline.
    Returns True when the child is gone."""
    _read(run)
    pid, status = _waitpid(run.pid, os.WNOHANG)
    if pid == 0 and time.monotonic() > run.deadline:
        run.killed = not (run.finished or run.stop or run.abort)
        _terminate(run)
        _read(run)
        return True
    if pid == 0:
        return False
    run.status = status
    _killpg_quietly(run.pid)                    # whatever it left behind in its process group
    _read(run)
    run.fh.close()
    return True


def _terminate(run: _Run) -> None:
    _killpg_quietly(run.pid)
    try:
        _kill(run.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        _, run.status = _waitpid(run.pid, 0)
    except ChildProcessError:
        pass
    if run.fh and not run.fh.closed:
        _read(run)
        run.fh.close()


def _killpg_quietly(pid: int) -> None:
    try:
        _killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(run: _Run) -> None:
    if run.fh is None or run.fh.closed:
        return
    run.buf += run.fh.read()
    *lines, run.buf = run.buf.split(b"\n")
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            _on_event(run, ev)


def _on_event(run: _Run, ev: dict) -> None:
    now = time.monotonic()
    kind = ev.get("ev")
    if kind == "start":
        run.current, run.importing = ev.get("nodeid"), None
        run.deadline = now + run.limits.get(run.current, max(run.limits.values()))
    elif kind == "import":
        run.importing = ev.get("file") if ev.get("phase") == "begin" else None
    elif kind == "report":
        data = ev.get("data") or {}
        run.reports.setdefault(data.get("nodeid"), []).append(data)
    elif kind == "end":
        run.ended.add(ev.get("nodeid"))
        run.current, run.deadline = None, now + START_LIMIT_S
    elif kind == "abort":
        run.abort, run.deadline = ev, now + EXIT_GRACE_S
    elif kind == "stop":
        run.stop, run.deadline = ev.get("scope") or "task", now + EXIT_GRACE_S
    elif kind == "finished":
        run.finished, run.deadline = True, now + EXIT_GRACE_S


# ----------------------------------------------------------------------------- outcomes
def _cause(run: _Run) -> tuple[str, str] | None:
    """Why the child stopped before all its tests ended, as (type, what happened); None if it did not."""
    if run.abort is not None:
        return run.abort.get("type") or "Exited", run.abort.get("message") or "the grading process stopped"
    if run.killed:
        limit = run.limits.get(run.current, max(run.limits.values()))
        return "Timeout", (f"ran past the time limit and did not stop when interrupted, so the grader "
                           f"killed its process after {limit:g} s")
    if run.finished or run.stop:
        return None
    status = run.status or 0
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return "Killed", f"the grading process was killed by {name}{_log_tail(run)}"
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    return "Exited", f"the grading process exited with code {code} (os._exit?){_log_tail(run)}"


def _log_tail(run: _Run) -> str:
    try:
        with open(run.log, errors="replace") as f:
            lines = [ln.strip() for ln in f.read()[-2000:].splitlines() if ln.strip()]
    except OSError:
        return ""
    return f"; its last output: {lines[-1][:200]}" if lines else ""


def _settle(config, run: _Run, out: dict, task_of) -> list:
    """Record the reports of ``run``'s tests in ``out``; return the tests to run in a fresh child."""
    cause = _cause(run)
    lost_tasks: dict[str, tuple[str, str]] = {}      # task -> (type, message) for its tests not run
    lesson_lost: tuple[str, str] | None = None
    rerun = []
    for item in run.items:
        nodeid, task = item.nodeid, task_of(item)[0]
        got = [config.hook.pytest_report_from_serializable(config=config, data=d) for d in run.reports.get(nodeid, [])]
        if nodeid in run.ended:
            out[nodeid] = got
            tampered = [r for r in got if "Tampered" in (getattr(r, "grade_error", None) or {}).get("types", [])]
            if tampered and run.stop:
                why = ("Tampered", f"not run: an earlier test of task {task} found tampering")
                lost_tasks[task] = why
                if run.stop == "lesson":
                    lesson_lost = ("Tampered", "not run: the lesson file tampered while it was imported")
            continue
        if nodeid == run.current and cause is not None:
            kind, what = cause
            if run.importing:
                message = f"while importing {run.importing}: {what}"
                lesson_lost = (kind, f"not run: importing {run.importing} failed with {kind}")
            else:
                message = f"during the test: {what}"
            out[nodeid] = got + _failure(item, kind, message, got)
            lost_tasks[task] = (kind, f"not run: an earlier test of task {task} failed with {kind}")
            continue
        why = lesson_lost or lost_tasks.get(task)
        if why:
            out[nodeid] = _failure(item, *why, [])
        else:
            rerun.append(item)
    if rerun and not run.ended and run.current is None:   # the child never got to a test: no retry
        kind, message = cause or ("Exited", "the grading process stopped before its first test")
        for item in rerun:
            out[item.nodeid] = _failure(item, kind, message, [])
        return []
    return rerun


def _failure(item, kind: str, message: str, got: list) -> list:
    """The reports a test gets when its child could not finish it: a failed call (after a setup,
    unless the child sent one) and a teardown to close it."""
    def report(outcome, when, longrepr=None, **extra):
        return TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, outcome, longrepr, when,
                          user_properties=list(item.user_properties), **extra)

    phases = {r.when for r in got}
    when = "teardown" if "call" in phases else "call"       # the phase the child did not finish
    error = {"when": when, "type": kind, "types": [kind], "message": message[:300], "detail": f"{kind}: {message}"}
    out = [] if "setup" in phases else [report("passed", "setup")]
    out.append(report("failed", when, f"{kind}: {message}", grade_error=error))
    return out if when == "teardown" else out + [report("passed", "teardown")]
