"""A warm process behind ``minidlm.grading.check()``: torch, pytest and the tests imported once.

``check()`` starts it on its first call (``python -m tests.exercises.check_worker``, from the
repository root) and talks to it in JSON lines on stdin / stdout:

    -> {"args": [pytest arguments], "log": "/tmp/.../pytest.log", "timeout": 300}
    <- {"rc": 0, "timed_out": false}

The worker never runs a learner's code. For each request it forks a fresh copy of itself, which runs
``pytest.main(args)`` (the grader as usual: one child process per lesson, the grade written by
``--grade-json``) and exits. Every check therefore starts from the same clean, warm state: nothing
from the previous check lingers, and the ~4 s of importing torch and collecting the tests is paid
once per notebook kernel instead of once per check. The worker exits when its stdin closes (the
kernel ended) or on an empty line.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
import traceback


def main() -> int:
    reply_fd = os.dup(1)                    # the protocol; everything else printed goes nowhere
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    _warm_up()
    _send(reply_fd, {"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            break
        try:
            request = json.loads(line)
            _send(reply_fd, _run(request))
        except Exception as exc:            # noqa: BLE001 - tell check(), keep serving
            _send(reply_fd, {"rc": None, "timed_out": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


def _warm_up() -> None:
    """Import what every check needs: collect the graded tests once (pytest imports them with its
    assertion rewriting; a forked check finds them in sys.modules) and do the grader's own warm-up."""
    import pytest

    from tests.exercises import isolation

    pytest.main(["tests/exercises", "--collect-only", "-q", "-p", "no:cacheprovider", "--impl", "exercises"])
    isolation._warm_up()
    gc.collect()
    gc.freeze()      # the forked checks' collector skips the warm objects (and leaves their pages shared)


def _send(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _run(request: dict) -> dict:
    """Fork; the copy runs pytest with ``request["args"]``; wait, killing it past the timeout."""
    args, log, timeout = list(request["args"]), request["log"], float(request.get("timeout", 300))
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        rc = 70
        try:
            os.setsid()
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            signal.signal(signal.SIGTERM, signal.default_int_handler)   # lets pytest kill its children
            import pytest

            rc = int(pytest.main(args))
        except BaseException:               # noqa: BLE001
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    return _wait(pid, timeout)


def _wait(pid: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline and not timed_out:
            timed_out = True
            _signal_group(pid, signal.SIGTERM)          # pytest stops and kills its lesson children
            deadline = time.monotonic() + 5.0
        elif timed_out and time.monotonic() > deadline:
            _signal_group(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    _signal_group(pid, signal.SIGKILL)                  # anything it left behind
    return {"rc": os.waitstatus_to_exitcode(status), "timed_out": timed_out}


def _signal_group(pid: int, sig) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    # No PR_SET_PDEATHSIG here: it fires when the *thread* that started us ends, and check()'s
    # warm-up starts us from a short-lived thread. A dead kernel closes our stdin, and we exit.
    sys.exit(main())
