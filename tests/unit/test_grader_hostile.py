"""Hostile submissions cannot end, hang or game the grade.

Each case copies solutions/ to a temporary folder, replaces ONE lesson file by a hostile version
(the solution with some lines added at the end, which redefine or patch things), grades a few
tasks of two or three lessons with the real command line, and reads the JSON the parent wrote:
the hostile lesson's tasks earn 0 with the expected failure type; the other lessons keep full marks.

The grading runs start in a module fixture, two at a time (each spends ~4 s importing torch), so
the whole file takes about as long as a third of its cases run one after another.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"
TIMEOUT = 3            # --grade-timeout: the solutions' tests of the chosen tasks take < 0.3 s each
BOUND_S = 90           # no run may take longer (a hung grader would take forever)

LOOP = """
    while True:                  # a loop that swallows every exception, the time limit's too
        try:
            while True:
                pass
        except BaseException:
            pass
"""

# name -> (lesson file, code appended to the solution, tasks graded)
CASES = {
    "exit_at_import": ("lesson03_information.py", "import os\nos._exit(0)\n", "3.1,3.2,5.2"),
    "killed_by_a_signal": ("lesson03_information.py",
                           "import os, signal\n\ndef cross_entropy(p, q, base=None):\n"
                           "    os.kill(os.getpid(), signal.SIGKILL)\n", "3.1,3.2,6.2"),
    "loop_at_import": ("lesson03_information.py", "if True:" + LOOP, "3.1,3.2,6.2"),
    "loop_in_a_call": ("lesson06_attention.py", "def causal_mask(L):" + LOOP, "3.1,6.1,6.2"),
    "signals_replaced_then_loop": ("lesson06_attention.py", """
import signal

def causal_mask(L):
    ignore = signal.signal
    signal.signal = lambda *a, **k: None
    signal.setitimer = lambda *a, **k: (0.0, 0.0)
    ignore(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass
""", "3.1,6.1,6.2"),
    "minidlm_and_torch_patched": ("lesson03_information.py", """
import signal
import minidlm.losses

def entropy(p, base=None):
    return torch.zeros(torch.as_tensor(p).shape[:-1], dtype=torch.float64)

minidlm.losses.entropy = lambda p, base=None, dim=-1: torch.zeros(torch.as_tensor(p).shape[:-1], dtype=torch.float64)
torch.softmax = lambda x, dim=-1, **kw: torch.zeros_like(x)
signal.signal = lambda *a, **k: None
""", "3.1,3.4,4.2"),
    "reference_patched_during_the_call": ("lesson05_nelbo.py", """
import minidlm.losses

def mdlm_nelbo(logits, x0, xt, t, mask_id):
    original = minidlm.losses.mdlm_nelbo

    def agree(*args, **kwargs):                  # answers once, then puts the reference back
        minidlm.losses.mdlm_nelbo = original
        return torch.tensor(0.0)

    minidlm.losses.mdlm_nelbo = agree
    return torch.tensor(0.0)

class Agreeable(torch.Tensor):
    pass

def llada_loss(logits, x0, xt, p_mask, mask_id):
    return torch.tensor(0.0).as_subclass(Agreeable)
""", "5.1,5.2,3.1"),
    "grader_replaced": ("lesson03_information.py", """
import json, sys
import tests.exercises.grading_plugin as plugin
import tests.exercises.isolation as isolation

FULL = {"total": 120.0, "possible": 120.0, "percent": 100.0, "tasks": {}, "tests": []}
plugin.grade = lambda config: FULL
plugin.pytest_terminal_summary = lambda *a, **k: None
plugin._write_json = lambda path, data: None
if "--grade-json" in sys.argv:                    # and a forged grade where the real one goes
    with open(sys.argv[sys.argv.index("--grade-json") + 1], "w") as f:
        json.dump(FULL, f)
""", "3.1,3.2,6.2"),
    "delegates_to_minidlm": ("lesson03_information.py", """
import minidlm.losses
from minidlm.losses import _probs, entropy

cross_entropy.__code__ = minidlm.losses.cross_entropy.__code__    # a copy of the reference's code
cross_entropy.__defaults__ = (None, -1)
""", "3.1,3.2,3.4,6.2"),
    "delegates_to_sdpa": ("lesson06_attention.py", """
import torch.nn.functional as F

def masked_attention(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
""", "6.3,6.4,3.1"),
}


def _grade(tmp: Path, name: str) -> dict:
    """Grade a copy of solutions/ with the case's lesson file made hostile (runs in a thread)."""
    lesson, code, tasks = CASES[name]
    learner = tmp / name
    shutil.copytree(SOLUTIONS, learner, ignore=shutil.ignore_patterns("__pycache__"))
    path = learner / lesson
    path.write_text(path.read_text() + "\n\n" + code)
    out = tmp / f"{name}.json"
    out.write_text('{"total": 999, "stale": true}')          # an earlier grade, to be deleted
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "tests/exercises", "--impl-path", str(learner), "--task", tasks,
           "--grade-json", str(out), "--grade-timeout", str(TIMEOUT), "-q", "-p", "no:cacheprovider"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=BOUND_S, env=env)
    seconds = time.monotonic() - start
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"grade": json.loads(out.read_text()), "proc": proc, "seconds": seconds}


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory):
    """name -> a future of that case's grading run; only the cases of the selected tests run."""
    wanted = [item.function.case for item in request.session.items
              if item.module is request.module and hasattr(item.function, "case")]
    tmp = tmp_path_factory.mktemp("hostile")
    pool = ThreadPoolExecutor(max_workers=2)
    futures = {name: pool.submit(_grade, tmp, name) for name in dict.fromkeys(wanted)}
    yield lambda name: futures[name].result()
    pool.shutdown(cancel_futures=True)


def case(name):
    def mark(fn):
        fn.case = name
        return fn
    return mark


def lost(g, tasks, kind):
    """Each task earned 0, every one of its tests failed, and every failure has type ``kind``."""
    for tid in tasks:
        t = g["tasks"][tid]
        assert t["earned"] == 0 and t["passed"] == 0 and t["failed"] > 0, (tid, t)
        assert t["errors"] and all(e["types"] == [kind] for e in t["errors"]), (tid, t["errors"])


def kept(g, tasks):
    for tid in tasks:
        t = g["tasks"][tid]
        assert t["earned"] == t["possible"] > 0 and not t["errors"], (tid, t)


def true_total(g, tasks):
    return sum(g["tasks"][t]["possible"] for t in tasks)


# ----------------------------------------------------------------------------- the cases
@case("exit_at_import")
def test_os_exit_at_import_fails_its_lesson_only_and_the_stale_grade_is_gone(graded):
    r = graded("exit_at_import")
    g = r["grade"]
    assert "stale" not in g and g["isolation"] == "process"
    lost(g, ["3.1", "3.2"], "Exited")
    assert "exited with code 0" in g["tasks"]["3.1"]["errors"][0]["message"]
    assert "importing lesson03_information.py" in g["tasks"]["3.1"]["errors"][0]["message"]
    kept(g, ["5.2"])
    assert g["total"] == true_total(g, ["5.2"])
    assert r["proc"].returncode == 1                     # pytest saw the failures, as the JSON did


@case("killed_by_a_signal")
def test_a_process_killed_by_a_signal_costs_that_task_only(graded):
    g = graded("killed_by_a_signal")["grade"]
    lost(g, ["3.2"], "Killed")
    assert "SIGKILL" in g["tasks"]["3.2"]["errors"][0]["message"]
    kept(g, ["3.1", "6.2"])                              # 3.1: the same lesson, in a fresh child


@case("loop_at_import")
def test_an_unstoppable_loop_at_import_is_killed(graded):
    r = graded("loop_at_import")
    lost(r["grade"], ["3.1", "3.2"], "Timeout")
    assert "killed its process" in r["grade"]["tasks"]["3.1"]["errors"][0]["message"]
    kept(r["grade"], ["6.2"])
    assert r["seconds"] < 40, r["seconds"]               # one kill (TIMEOUT + grace) for the lesson


@case("loop_in_a_call")
def test_an_unstoppable_loop_in_a_call_costs_its_tasks_only(graded):
    r = graded("loop_in_a_call")
    lost(r["grade"], ["6.1"], "Timeout")
    kept(r["grade"], ["6.2", "3.1"])                     # 6.2: the same lesson, in a fresh child
    assert r["seconds"] < 40, r["seconds"]


@case("signals_replaced_then_loop")
def test_replacing_signal_functions_does_not_stop_the_kill(graded):
    r = graded("signals_replaced_then_loop")
    lost(r["grade"], ["6.1"], "Timeout")
    kept(r["grade"], ["6.2", "3.1"])
    assert r["seconds"] < 40, r["seconds"]


@case("minidlm_and_torch_patched")
def test_patching_minidlm_and_torch_is_tampering_and_stays_in_its_lesson(graded):
    g = graded("minidlm_and_torch_patched")["grade"]
    lost(g, ["3.1", "3.4"], "Tampered")
    first = g["tasks"]["3.1"]["errors"][0]["message"]
    assert "minidlm.losses.entropy" in first and "torch.softmax" in first and "signal.signal" in first
    kept(g, ["4.2"])          # lesson 04's test compares with minidlm.losses.entropy: still the real one


@case("reference_patched_during_the_call")
def test_a_patch_that_undoes_itself_and_a_tensor_subclass_are_caught(graded):
    g = graded("reference_patched_during_the_call")["grade"]
    lost(g, ["5.1", "5.2"], "Tampered")
    assert any("minidlm.losses.mdlm_nelbo" in e["message"] for e in g["tasks"]["5.1"]["errors"])
    assert any("subclass of torch.Tensor" in e["message"] for e in g["tasks"]["5.2"]["errors"])
    kept(g, ["3.1"])


@case("grader_replaced")
def test_replacing_the_graders_functions_cannot_change_the_grade(graded):
    r = graded("grader_replaced")
    g = r["grade"]
    lost(g, ["3.1", "3.2"], "Tampered")
    assert "tests.exercises.grading_plugin.grade" in g["tasks"]["3.1"]["errors"][0]["message"]
    kept(g, ["6.2"])
    assert g["total"] == true_total(g, ["6.2"]) < g["possible"]   # not the forged 120 / 120
    assert f"{g['total']:g} / {g['possible']:g}" in r["proc"].stdout.replace("  ", " ")


@case("delegates_to_minidlm")
def test_calling_minidlms_reference_earns_nothing(graded):
    g = graded("delegates_to_minidlm")["grade"]
    lost(g, ["3.1", "3.2"], "Delegated")
    assert "your entropy calls minidlm.losses.entropy" in g["tasks"]["3.1"]["errors"][0]["message"]
    assert "your cross_entropy calls minidlm.losses" in g["tasks"]["3.2"]["errors"][0]["message"]
    kept(g, ["3.4", "6.2"])


@case("delegates_to_sdpa")
def test_calling_torchs_fused_attention_in_the_attention_task_earns_nothing(graded):
    g = graded("delegates_to_sdpa")["grade"]
    lost(g, ["6.4"], "Delegated")
    assert "scaled_dot_product_attention" in g["tasks"]["6.4"]["errors"][0]["message"]
    kept(g, ["6.3", "3.1"])
