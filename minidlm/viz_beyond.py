"""Lesson 15's measurement figures (beyond [MASK]): sample quality against network calls for the
masked model with and without ReMDM remasking, and for a uniform-state model against the masked
one, from ``benchmarks/beyond_mask.py``'s JSON. Pure functions: data in, a matplotlib Figure out."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

METRICS = {"valid": "valid stories (%)", "well_formed_sentences": "well-formed sentences (%)"}


def _check_rows(name: str, rows, metric: str):
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {sorted(METRICS)}, got {metric!r}")
    if not rows:
        raise ValueError(f"{name}: expected at least one row with 'label', 'calls_per_story' and {metric!r}")
    for r in rows:
        missing = {"label", "calls_per_story", metric} - set(r)
        if missing:
            raise ValueError(f"{name}: a row lacks {sorted(missing)}")


def draw_quality(ax, rows: list, metric: str = "valid", title: str | None = None):
    """Onto ``ax``: ``metric`` (in %) against network calls per story (log2 axis), one line per
    row ``label``. rows: dicts with 'label', 'calls_per_story' and the metric (a share in [0, 1])."""
    _check_rows("rows", rows, metric)
    for label in dict.fromkeys(r["label"] for r in rows):
        pts = sorted((r["calls_per_story"], 100 * r[metric]) for r in rows if r["label"] == label)
        ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "o", label=label, ms=4)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("network calls per story")
    ax.set_ylabel(METRICS[metric])
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def beyond_mask_figure(res: dict):
    """The benchmark's figure: one column per part present in ``res`` ("remdm": the masked model
    with and without remasking; "uniform": the uniform-state model against the masked one), valid
    stories on top and well-formed sentences below. Returns the Figure."""
    parts = [p for p in ("remdm", "uniform") if isinstance(res, dict) and (res.get(p) or {}).get("rows")]
    if not parts:
        raise ValueError("res: expected a 'remdm' or 'uniform' part with rows")
    titles = {"remdm": "masked model: ancestral, ReMDM, LLaDA order",
              "uniform": "uniform-state model vs the masked model"}
    fig, axes = plt.subplots(2, len(parts), figsize=(6.2 * len(parts), 7.2), squeeze=False)
    for j, p in enumerate(parts):
        n = res[p].get("n")
        for i, metric in enumerate(METRICS):
            draw_quality(axes[i][j], res[p]["rows"], metric,
                         f"{titles[p]}" + (f" ({n} stories each)" if n else "") if i == 0 else None)
    fig.tight_layout()
    return fig
