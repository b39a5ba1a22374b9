"""Lesson 14's figures (block diffusion, BD3-LM): the training mask over [x_t ; x_0], a sampler's
trace block by block, and the measurements of ``benchmarks/block_diffusion.py`` and the
data-constrained run. Pure functions: data in, a matplotlib Figure out."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ._validate import check_positive_int
from .blocks import training_mask

METHOD_LABELS = {"bd3lm": "BD3-LM (block cache)", "mdm_semi_ar": "MDM, semi-AR LLaDA", "mdm": "MDM, LLaDA",
                 "esolm": "Eso-LM (B, cache)"}


def training_mask_figure(L: int = 16, block_size: int = 4):
    """The (2L, 2L) mask of ``blocks.training_mask`` as a heatmap (dark = may attend), the four
    quadrants named and the block boundaries drawn. Returns the Figure."""
    check_positive_int("L", L)
    check_positive_int("block_size", block_size)
    m = training_mask(L, block_size).numpy()
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    ax.imshow(m, cmap="Greys", vmin=0, vmax=1.4, interpolation="nearest")
    for edge in range(block_size, 2 * L, block_size):
        if edge % L:
            ax.axhline(edge - 0.5, color="tab:blue", lw=0.5, alpha=0.5)
            ax.axvline(edge - 0.5, color="tab:blue", lw=0.5, alpha=0.5)
    ax.axhline(L - 0.5, color="tab:red", lw=1.5)
    ax.axvline(L - 0.5, color="tab:red", lw=1.5)
    for (r, c), name in {(0, 0): "noisy -> noisy\n(own block)", (0, 1): "noisy -> clean\n(earlier blocks)",
                         (1, 0): "clean -> noisy\n(never)", (1, 1): "clean -> clean\n(block-causal)"}.items():
        ax.text(c * L + L / 2 - 0.5, r * L + L / 2 - 0.5, name, ha="center", va="center", fontsize=8,
                color="tab:red", bbox=dict(facecolor="white", alpha=0.8, lw=0))
    ticks = list(range(0, 2 * L, block_size))
    ax.set_xticks(ticks, [("t" if k < L else "0") + str(k % L) for k in ticks], fontsize=7)
    ax.set_yticks(ticks, [("t" if k < L else "0") + str(k % L) for k in ticks], fontsize=7)
    ax.set_xlabel("key: x_t positions | x_0 positions")
    ax.set_ylabel("query")
    ax.set_title(f"BD3-LM training mask, L = {L}, block size {block_size}")
    fig.tight_layout()
    return fig


def block_trace_grid(states, mask_id: int, block_size: int, row: int = 0, eos_id: int | None = None):
    """One line per state of a sampler's trace (the start, then one per network call), one column
    per position: masked cells white, decoded cells coloured by their block (alternating hues),
    [EOS] grey. ``states``: a list of (B, L) tensors. Returns the Figure."""
    check_positive_int("block_size", block_size)
    if not states:
        raise ValueError("states: expected at least one (B, L) state")
    S = torch.stack([torch.as_tensor(s)[row] for s in states]).numpy()     # (n_states, L)
    n, L = S.shape
    blk = np.arange(L) // block_size
    palette = np.array(plt.get_cmap("tab10").colors)[[0, 1]]
    img = np.ones((n, L, 3))
    decoded = S != mask_id
    img[decoded] = palette[(blk % 2)[None, :].repeat(n, 0)[decoded]]
    if eos_id is not None:
        img[S == eos_id] = (0.6, 0.6, 0.6)
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.18 * L), min(8, 1 + 0.22 * n)))
    ax.imshow(img, aspect="auto", interpolation="nearest")
    for edge in range(block_size, L, block_size):
        ax.axvline(edge - 0.5, color="k", lw=0.6)
    ax.set_xlabel("position (vertical lines: block boundaries)")
    ax.set_ylabel("state (after call ...)")
    ax.set_title(f"block-by-block decoding: {n - 1} states after the start, block size {block_size}")
    fig.tight_layout()
    return fig


def nelbo_by_block_size(rows: list):
    """Validation NELBO (nats per token) against block size, from the ``block_sizes`` rows of
    ``block_diffusion_cpu.json``; x on a log2 axis. Returns the Figure."""
    if not rows:
        raise ValueError("rows: expected at least one {'block_size', 'val_nelbo'} row")
    rows = sorted(rows, key=lambda r: r["block_size"])
    k = [r["block_size"] for r in rows]
    y = [r["val_nelbo"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(k, y, "o-")
    ax.set_xscale("log", base=2)
    ax.set_xticks(k, [str(v) for v in k])
    ax.set_xlabel("block size K (1 = AR, L = MDLM)")
    ax.set_ylabel("val NELBO (nats / token)")
    ax.set_title("likelihood bound by block size")
    fig.tight_layout()
    return fig


def quality_vs_calls(rows: list):
    """Valid stories (%) against network calls per story, one marker series per method, from the
    ``quality`` rows of ``block_diffusion_cpu.json``. Returns the Figure."""
    if not rows:
        raise ValueError("rows: expected at least one quality row")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    name = lambda r: r.get("method", r.get("sampler"))                   # noqa: E731 (the JSON says "sampler")
    for method in dict.fromkeys(name(r) for r in rows):
        pts = sorted((r["calls_per_story"], 100 * r["valid"]) for r in rows if name(r) == method)
        ax.plot(*zip(*pts), "o-", label=METHOD_LABELS.get(method, method))
    ax.set_xlabel("network calls per story")
    ax.set_ylabel("valid stories (%)")
    ax.set_ylim(0, 105)
    ax.set_title("quality at equal calls")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cache_speed(rows: list):
    """Sampling time with and without the block cache against length L (grouped bars), the ratio
    uncached / cached written above each pair. Returns the Figure."""
    if not rows:
        raise ValueError("rows: expected at least one cache_speed row")
    rows = sorted(rows, key=lambda r: r["L"])
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(x - 0.2, [r["seconds_uncached"] for r in rows], 0.4, label="no cache")
    ax.bar(x + 0.2, [r["seconds_cached"] for r in rows], 0.4, label="block cache")
    for i, r in enumerate(rows):
        top = max(r["seconds_uncached"], r["seconds_cached"])
        ax.text(i, top, f"{r['seconds_uncached'] / r['seconds_cached']:.1f}x", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [str(r["L"]) for r in rows])
    ax.set_xlabel("L (tokens)")
    ax.set_ylabel("seconds")
    ax.set_title("BD3-LM sampling time, with and without the cache")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def data_constrained(curves: dict, best: dict | None = None):
    """Held-out loss against epochs for each model (``curves``: name -> [{'epoch', 'val_loss'}]),
    the best epoch of each marked with a star. Returns the Figure."""
    if not curves:
        raise ValueError("curves: expected at least one model's curve")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, pts in curves.items():
        line, = ax.plot([p["epoch"] for p in pts], [p["val_loss"] for p in pts], "-", label=name)
        if best and name in best:
            ax.plot(best[name]["epoch"], best[name]["val_loss"], "*", ms=12, color=line.get_color())
    ax.set_xlabel("epochs over the same stories")
    ax.set_ylabel("held-out loss (nats / token)")
    ax.set_title("repeated data: held-out loss by epoch (star: best)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
