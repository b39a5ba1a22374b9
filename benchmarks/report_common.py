"""What every part of the experiments report shares (lesson 13): where things are, the Report that
reads the results folder, and the small Markdown helpers. ``report.py`` runs the parts and writes the
files; ``report_claims.py`` holds the claims' verdicts; ``report_sections.py`` the RESULTS.md sections."""
from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
CKPTS = ROOT / "data" / "checkpoints"
README = ROOT / "README.md"


# ----------------------------------------------------------------------------------- rendering

class Report:
    """Reads the results folder and renders Markdown."""

    def __init__(self, results: Path, out_md: Path):
        self.results, self.out_md = results, out_md

    def load(self, name):
        p = self.results / name
        return json.loads(p.read_text()) if p.exists() else None

    def img(self, name, alt):
        p = self.results / name
        if not p.exists():
            return ""
        return f"![{alt}]({os.path.relpath(p, self.out_md.parent)})"

    def cmd(self, part):
        log = self.load("report_runs.json") or {}
        if part in log:
            return f"`{log[part]['command']}` ({log[part]['seconds']:.0f} s on {log[part]['machine']})"
        return f"`python benchmarks/report.py --rerun {part}`"


def _f(x, nd=3):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.{nd}f}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_f(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _machine(m) -> str:
    if isinstance(m, dict):
        return f"{m.get('machine', '')} {m.get('device', '')}, {m.get('cores', '?')} cores, torch {m.get('torch', '')}, " \
               f"{m.get('threads', '?')} threads, {m.get('dtype', '')}"
    return str(m)
