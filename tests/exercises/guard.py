"""What graded code may not do, checked inside the process that runs it.

Two checks guard the tests' reference answers, which are computed in the same process as the
learner's functions:

* **Tampered**: the learner's file replaced something the tests rely on: a function of minidlm, of
  the tests, of this grader, of torch, pytest, Hypothesis, ``math``, ``builtins`` or ``signal``
  (the module attribute or its ``__code__``), changed the profiler this module watches with, or
  returned an object whose comparisons it controls (a subclass of ``torch.Tensor``, ``int``,
  ``list``..., or a class of its own). :func:`arm` takes the snapshot before any lesson file is
  imported; :func:`check_integrity` compares everything after the import and after every graded
  test, and, after every call of a learner's function, what the tests and references use (so a
  patch that undoes itself before the test ends is caught too).
* **Delegated**: while a learner's function runs, a profile hook (``sys.setprofile``, active only
  during that call) watches for any call into minidlm's own code (every exercise has its
  reference in minidlm) and, in the attention lesson, into torch's fused attention
  (``scaled_dot_product_attention``). A hit fails the test with a message that says why.

Both exceptions derive from BaseException, so neither the learner's ``except Exception`` nor
Hypothesis (which would re-run the example) swallows them. These are in-process checks: they catch
the obvious ways to game a grade, not a determined attacker who runs code in the same process
(see INSTRUCTORS.md, "What the isolation does and does not guarantee").
"""
from __future__ import annotations

import functools
import operator
import os
import sys
import threading
import types

import minidlm

__all__ = ["Tampered", "Delegated", "arm", "check_integrity", "LessonProxy", "set_current"]

# Captured before any learner code runs, so that replacing sys.setprofile cannot blind the watch.
_setprofile, _getprofile = sys.setprofile, sys.getprofile
_thread_setprofile = threading.setprofile
_thread_getprofile = getattr(threading, "getprofile", lambda: None)
_is = operator.is_

MINIDLM_DIR = os.path.dirname(os.path.abspath(minidlm.__file__)) + os.sep

# Tasks (by prefix) in which torch's fused attention does the exercise for the learner.
FORBIDDEN_TORCH = {"6.": ("scaled_dot_product", "multi_head_attention", "flash_attention",
                          "efficient_attention")}


class Tampered(BaseException):
    """The learner's code replaced something the grader or the tests rely on."""


class Delegated(BaseException):
    """The learner's function called minidlm's own reference (or torch's fused attention)."""


# ----------------------------------------------------------------------------- the current test
class _Current:
    task: str = "?"
    allow_minidlm: bool = False


CURRENT = _Current()


def set_current(task: str, allow_minidlm: bool = False) -> None:
    """Name the graded test being run (its task id goes into the messages)."""
    CURRENT.task, CURRENT.allow_minidlm = task, allow_minidlm


# ----------------------------------------------------------------------------- Tampered
# Consumers compute the reference answers and judge the learner's (minidlm, the tests, the grader,
# torch's and pytest's comparison code): everything they hold is watched, with their classes'
# attributes. Providers are what the consumers call by name: after every call of a learner's
# function only the names the consumers' code uses are compared (co_names: ~0.3 ms), all of them at
# import and after each test. Machinery (pytest's and Hypothesis's own, which a patch could make
# report a pass) is compared at import and after each test.
_CONSUMER_PREFIXES = ("minidlm", "tests.exercises")
_CONSUMER_MODULES = ("torch.testing._comparison", "_pytest.approx", "_pytest.raises")
_PROVIDERS = ("torch", "torch.nn.functional", "torch.special", "torch.linalg", "torch.testing", "math",
              "builtins", "signal", "pytest")
_MACHINERY = ("_pytest.outcomes", "_pytest.runner", "_pytest.reports", "_pytest.python", "hypothesis",
              "hypothesis.core", "pluggy._callers")
_ALWAYS = {"sys": ("setprofile", "getprofile", "settrace", "exit"),
           "os": ("_exit", "write", "kill", "killpg"),
           "threading": ("setprofile",)}


class _Snapshot:
    """The identity of every watched attribute (and of each function's code and defaults)."""

    def __init__(self):
        self.spaces: list[tuple] = []       # (label, dict, names, objects, fast)
        self.class_keys: list[tuple] = []   # (label, class dict, its keys): a class may not gain attributes
        self.funcs: list[tuple] = []        # (label, function, fast)

    def add(self, label: str, namespace, names=None, fast: bool = True, is_class: bool = False) -> None:
        if is_class:         # a new attribute on a class shadows its bases (torch.Tensor.sum = ...)
            self.class_keys.append((label, namespace, frozenset(namespace.keys())))
        if names is None:
            names = [k for k, v in list(namespace.items()) if _watchable(v)]
        names = tuple(k for k in names if k in namespace)
        objs = tuple(namespace[k] for k in names)
        self.spaces.append((label, namespace, names, objs, fast))
        self.funcs += [(f"{label}.{k}", v, fast) for k, v in zip(names, objs) if isinstance(v, types.FunctionType)]

    def add_split(self, label: str, namespace, fast_names: set, is_class: bool = False) -> None:
        """A provider: the names in ``fast_names`` on every check, the others on full checks."""
        names = [k for k, v in list(namespace.items()) if _watchable(v)]
        self.add(label, namespace, [k for k in names if k in fast_names], fast=True, is_class=is_class)
        self.add(label, namespace, [k for k in names if k not in fast_names], fast=False)

    def freeze(self) -> None:
        self.tiers = {}
        for full in (False, True):
            spaces = [(ns, names, objs) for _, ns, names, objs, fast in self.spaces if full or fast]
            funcs = [f for _, f, fast in self.funcs if full or fast]
            self.tiers[full] = (spaces, funcs, tuple(f.__code__ for f in funcs),
                                tuple(f.__defaults__ for f in funcs), tuple(f.__kwdefaults__ for f in funcs))

    def intact(self, full: bool) -> bool:
        """Is every watched object still in place? (C-level loops; the fast tier is ~0.3 ms)"""
        spaces, fs, codes, defaults, kwdefaults = self.tiers[full]
        for ns, names, objs in spaces:
            if not all(map(_is, map(ns.get, names), objs)):
                return False
        for _, ns, keys in self.class_keys:
            if len(ns) != len(keys):
                return False
        return (all(map(_is, map(_code, fs), codes)) and all(map(_is, map(_defaults, fs), defaults))
                and all(map(_is, map(_kwdefaults, fs), kwdefaults)))

    def changed(self, full: bool, limit: int = 5) -> list[str]:
        """The watched names whose object (or function code / defaults) is not the one snapshotted."""
        if self.intact(full):
            return []
        out = [f"{label}.{k}" for label, ns, names, objs, _ in self.spaces
               for k, o in zip(names, objs) if ns.get(k) is not o]
        out += [f"{label}.{k}" for label, ns, keys in self.class_keys for k in set(ns.keys()) - keys]
        _, fs, codes, defaults, kwdefaults = self.tiers[True]
        out += [name for (name, f, _), c, d, kd in zip(self.funcs, codes, defaults, kwdefaults)
                if f.__code__ is not c or f.__defaults__ is not d or f.__kwdefaults__ is not kd]
        return list(dict.fromkeys(out))[:limit]


_code = operator.attrgetter("__code__")
_defaults = operator.attrgetter("__defaults__")
_kwdefaults = operator.attrgetter("__kwdefaults__")


def _watchable(v) -> bool:
    return callable(v) or isinstance(v, (types.ModuleType, staticmethod, classmethod, property))


def _names_used(modules) -> set[str]:
    """Every attribute / global name the functions of ``modules`` (and their classes') look up."""
    names: set[str] = set()

    def walk(code):
        names.update(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    def functions(v):
        for f in (v, getattr(getattr(v, "hypothesis", None), "inner_test", None), getattr(v, "__wrapped__", None)):
            if isinstance(f, (staticmethod, classmethod)):
                f = f.__func__
            if isinstance(f, property):
                yield from (g for g in (f.fget, f.fset) if g is not None)
            elif isinstance(f, types.FunctionType):
                yield f

    for m in modules:
        for v in list(vars(m).values()):
            values = list(vars(v).values()) if isinstance(v, type) and v.__module__ == m.__name__ else [v]
            for value in values:
                for f in functions(value):
                    walk(f.__code__)
    return names


_SNAPSHOT: _Snapshot | None = None


def arm(extra_modules=()) -> None:
    """Snapshot the watched namespaces. Call it before any learner code is imported."""
    global _SNAPSHOT
    import torch                          # noqa: PLC0415  (imported by every graded test anyway)

    snap = _Snapshot()
    loaded = {n: m for n, m in list(sys.modules.items()) if m is not None}
    consumers = {n: m for n, m in loaded.items() if n.startswith(_CONSUMER_PREFIXES) or n in _CONSUMER_MODULES}
    consumers.update({m.__name__: m for m in extra_modules})   # test files outside tests/exercises
    used = _names_used(consumers.values())
    for name, m in sorted(consumers.items()):
        snap.add(name, vars(m))
        for k, v in list(vars(m).items()):
            if isinstance(v, type) and v.__module__ == name:
                snap.add(f"{name}.{k}", v.__dict__, is_class=True)
    for name in _PROVIDERS:
        if name in loaded:
            snap.add_split(name, vars(loaded[name]), used)
    snap.add_split("torch.Tensor", torch.Tensor.__dict__, used, is_class=True)
    for name in _MACHINERY:
        if name in loaded:
            snap.add(name, vars(loaded[name]), fast=False)
            for k, v in list(vars(loaded[name]).items()):
                if isinstance(v, type) and v.__module__ == name:
                    snap.add(f"{name}.{k}", v.__dict__, fast=False)
    for modname, names in _ALWAYS.items():
        snap.add(modname, vars(sys.modules[modname]), names)
    snap.freeze()
    _SNAPSHOT = snap


def check_integrity(when: str, full: bool = True) -> None:
    """Raise Tampered if a watched object was replaced since :func:`arm` (no-op when not armed).
    ``full=False``: only the fast tier (after each call of a learner's function)."""
    __tracebackhide__ = True
    if _SNAPSHOT is None:
        return
    changed = _SNAPSHOT.changed(full)
    if changed:
        verb = "was" if len(changed) == 1 else "were"
        raise Tampered(f"task {CURRENT.task}: {', '.join(changed)} {verb} replaced ({when}); a lesson file "
                       f"must not change minidlm, torch, the tests or the grader")


# ----------------------------------------------------------------------------- Delegated
class _Watch:
    """The profile hook active while one learner function runs: notes the first forbidden call."""

    __slots__ = ("hit", "active", "forbid", "minidlm")

    def __init__(self, forbid: tuple, minidlm_ok: bool):
        self.hit = None
        self.active = True
        self.forbid = forbid
        self.minidlm = not minidlm_ok

    def __call__(self, frame, event, arg):
        if self.hit is not None or not self.active:
            return
        if event == "call":
            code = frame.f_code
            if self.minidlm and code.co_filename.startswith(MINIDLM_DIR):
                self.hit = ("minidlm", code)
            elif self.forbid and any(s in code.co_name for s in self.forbid):
                self.hit = ("torch", code.co_name)
        elif event == "c_call" and self.forbid:
            name = getattr(arg, "__name__", "") or ""
            if any(s in name for s in self.forbid):
                self.hit = ("torch", name)


def _forbidden_torch(task: str) -> tuple:
    return next((names for prefix, names in FORBIDDEN_TORCH.items() if task.startswith(prefix)), ())


def _minidlm_name(code) -> str:
    rel = os.path.relpath(code.co_filename, os.path.dirname(MINIDLM_DIR.rstrip(os.sep)))
    module = rel[:-3].replace(os.sep, ".") if rel.endswith(".py") else rel
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


def _delegation_message(name: str, hit) -> str:
    task = CURRENT.task
    kind, what = hit
    if kind == "minidlm":
        return (f"task {task}: your {name} calls {_minidlm_name(what)}, minidlm's own code (the grader's "
                f"reference); write it with torch only")
    return (f"task {task}: your {name} calls torch's {what}, which does the exercise for you; compute "
            f"softmax(q k^T / sqrt(d)) v yourself")


def _stop_watch(watch: _Watch, previous, previous_threads) -> bool:
    """Put the previous profilers back; False if the learner's code had replaced ours."""
    still_watching = _getprofile() is watch
    _setprofile(previous)
    _thread_setprofile(previous_threads)
    watch.active = False
    return still_watching


def call_watched(fn, name: str, args, kwargs):
    """Run one learner function under the watch; raise Delegated / Tampered afterwards."""
    __tracebackhide__ = True                 # pytest shows the test and the learner's code, not this
    watch = _Watch(_forbidden_torch(CURRENT.task), CURRENT.allow_minidlm)
    previous, previous_threads = _getprofile(), _thread_getprofile()
    _thread_setprofile(watch)
    _setprofile(watch)
    try:
        result = fn(*args, **kwargs)
        if isinstance(result, types.GeneratorType):      # run a generator's body under the watch too
            result = list(result)
    except BaseException as exc:
        _stop_watch(watch, previous, previous_threads)
        if watch.hit is not None:                        # the delegation explains the failure better
            raise Delegated(_delegation_message(name, watch.hit)) from exc
        raise
    if not _stop_watch(watch, previous, previous_threads):
        raise Tampered(f"task {CURRENT.task}: your {name} changed the profiler (sys.setprofile) that the "
                       f"grader watches your code with")
    if watch.hit is not None:
        raise Delegated(_delegation_message(name, watch.hit))
    check_integrity(f"after your {name} returned", full=False)
    check_result(result, name)
    return result


# ----------------------------------------------------------------------------- results
_PLAIN = (int, float, bool, complex, str, bytes, type(None))
_SAFE_MODULES = ("torch", "numpy", "builtins", "collections")


def check_result(x, name: str, depth: int = 0) -> None:
    """Tampered if a returned value controls its own comparisons: a subclass of Tensor, int, list...
    or an object of a class from the learner's file. Tensors, Python numbers and strings, numpy and
    torch values (numpy.float64, torch.Size, ...) and lists, tuples and dicts of them are fine."""
    import torch  # noqa: PLC0415

    t = type(x)
    if t in _PLAIN or t is torch.Tensor or t is torch.nn.Parameter or depth > 4:
        return
    trusted = (getattr(t, "__module__", None) or "").split(".")[0] in _SAFE_MODULES
    bad = None
    if isinstance(x, torch.Tensor):
        bad = f"an object of type {t.__name__}, a subclass of torch.Tensor"
    elif isinstance(x, (list, tuple, dict)):
        base = next(b for b in (list, tuple, dict) if isinstance(x, b))
        if not trusted and (t.__eq__ is not base.__eq__ or t.__ne__ is not base.__ne__):
            bad = f"an object of type {t.__name__}, which redefines =="
        else:
            for v in (x.values() if isinstance(x, dict) else x):
                check_result(v, name, depth + 1)
    elif trusted:
        return
    elif isinstance(x, _PLAIN):
        bad = f"an object of type {t.__name__}, a subclass of {t.__mro__[1].__name__}"
    else:
        bad = f"an object of type {t.__name__} (from {t.__module__})"
    if bad:
        raise Tampered(f"task {CURRENT.task}: your {name} returned {bad}; return plain tensors, numbers, "
                       f"or lists/tuples of them")


# ----------------------------------------------------------------------------- the proxy
class LessonProxy:
    """What ``load(...)`` hands the tests: the learner's module, with every callable attribute run
    under :func:`call_watched`. Other attributes pass through unchanged."""

    __slots__ = ("_module",)

    def __init__(self, module):
        object.__setattr__(self, "_module", module)

    def __getattr__(self, name):
        value = getattr(self._module, name)
        return _wrap(value, name) if callable(value) else value

    def __dir__(self):
        return dir(self._module)

    def __repr__(self):
        return f"<graded {self._module.__name__} from {getattr(self._module, '__file__', '?')}>"


def _wrap(fn, name: str):
    @functools.wraps(fn)
    def graded(*args, **kwargs):
        __tracebackhide__ = True
        return call_watched(fn, name, args, kwargs)

    return graded
