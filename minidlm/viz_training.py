"""Lesson 06's figures: the three attention masks, how far a one-token change reaches under each,
the learning-rate schedule, and the shipped runs' learning curves. Pure renderers: the notebook
computes every number, each function only draws it and returns the Figure (it shows nothing)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def mask_panels(named_masks: dict) -> Figure:
    """Lesson 06, section 2: one panel per boolean (query, key) attention mask, blue where the query
    may attend (``named_masks``: title -> (L, L) mask)."""
    fig, ax = plt.subplots(1, len(named_masks), figsize=(11, 3.6), squeeze=False)
    for a, (title, m) in zip(ax[0], named_masks.items()):
        a.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1.3)
        a.set_title(title)
        a.set_xlabel("key j (attended to)")
        a.set_ylabel("query i")
    fig.tight_layout()
    return fig


def logit_change(moved_causal, moved_bidir, k_pos: int) -> Figure:
    """Lesson 06, section 2: per position, the largest change in the logits after token ``k_pos`` of
    the row was changed, under the causal mask and under bidirectional attention."""
    fig, ax = plt.subplots(figsize=(9, 3))
    pos = torch.arange(len(moved_causal))
    ax.bar(pos - 0.2, moved_causal, width=0.4, label="causal (AR)")
    ax.bar(pos + 0.2, moved_bidir, width=0.4, label="bidirectional (MDM)")
    ax.axvline(k_pos, color="gray", ls="--")
    ax.annotate(f"token {k_pos} changed", (k_pos, ax.get_ylim()[1] * 0.9), xytext=(5, 0), textcoords="offset points")
    ax.set_xlabel("position")
    ax.set_ylabel("max |change in logits|")
    ax.legend()
    fig.tight_layout()
    return fig


def lr_curve(steps, lrs, warmup: int, min_lr_ratio: float) -> Figure:
    """Lesson 06, section 3: the learning rate ``lrs`` at each of ``steps`` (warm-up, then cosine)."""
    fig, ax = plt.subplots(figsize=(6.5, 3))
    ax.plot(steps, lrs)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"warm-up {warmup} steps, cosine to {min_lr_ratio:g} x peak")
    fig.tight_layout()
    return fig


def shipped_curves(curves: list, floor: float) -> Figure:
    """Lesson 06, section 7: the shipped runs' validation loss against training tokens (left) and
    seconds (right), one line per run of ``curves`` (the records of curves.json), above the entropy
    ``floor`` in nats per token."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6))
    for c in curves:
        ax[0].plot(c["tokens"], c["val_loss"], "o-", ms=3, label=c["objective"].upper())
        ax[1].plot(c["seconds"], c["val_loss"], "o-", ms=3, label=c["objective"].upper())
    ax[0].set_xlabel("training tokens")
    ax[1].set_xlabel("seconds (the machine that trained them)")
    for a in ax:
        a.axhline(floor, color="gray", ls="--", lw=1, label="entropy floor")
        a.set_ylabel("validation loss (nats/token)")
        a.legend()
        a.grid(alpha=0.3)
    fig.suptitle("Shipped runs: AR vs MDM")
    fig.tight_layout()
    return fig
