"""Build exercises/ from solutions/: every function whose docstring starts with "Task N.M" keeps its
signature and docstring, and its body becomes ``raise NotImplementedError("Task N.M")``. Everything
else (the module docstring, imports, helper functions given to the learner) is copied as it is.

    python tests/exercises/make_exercises.py           # rewrite exercises/lesson*.py
    python tests/exercises/make_exercises.py --check   # exit 1 if exercises/ is out of date (CI)

So the stubs learners receive can never drift from the solutions the grader is checked against.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TASK = re.compile(r"^Task (\d+\.\d+)\b")


def stub_source(source: str) -> str:
    """The exercise version of one solution file."""
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    cuts = []  # (first line to drop, last line to drop, indent, task id), 1-based inclusive
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node)
        m = TASK.match(doc or "")
        if not m:
            continue
        docnode = node.body[0]
        indent = " " * node.body[0].col_offset
        cuts.append((docnode.end_lineno + 1, node.end_lineno, indent, m.group(1)))
    for first, last, indent, tid in sorted(cuts, reverse=True):
        lines[first - 1:last] = [f'{indent}raise NotImplementedError("Task {tid}")\n']
    return "".join(lines)


def build(check: bool = False) -> list[str]:
    """Write (or, with check, compare) every exercises/lessonNN_*.py; return the files that differ."""
    differ = []
    for sol in sorted((REPO / "solutions").glob("lesson*.py")):
        ex = REPO / "exercises" / sol.name
        text = stub_source(sol.read_text())
        if not ex.exists() or ex.read_text() != text:
            differ.append(ex.name)
            if not check:
                ex.write_text(text)
    extra = {p.name for p in (REPO / "exercises").glob("lesson*.py")} - \
            {p.name for p in (REPO / "solutions").glob("lesson*.py")}
    differ += sorted(extra)
    return differ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = ap.parse_args(argv)
    differ = build(check=args.check)
    if args.check and differ:
        print("exercises/ is out of date with solutions/: " + ", ".join(differ), file=sys.stderr)
        return 1
    if not args.check:
        print("wrote " + (", ".join(differ) if differ else "nothing (already up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
