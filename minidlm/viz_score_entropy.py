"""Figures of lesson 12 (score entropy): the loss as a function of the right token's score, the
toy score model's training curve, and its learned ratios against the true conditionals."""
from __future__ import annotations

import math

import torch

from .viz import _plt


def score_entropy_vs_score(sigma: float, wrong_score: float = 0.0, V: int = 5, mask_id: int = 4, x0: int = 2,
                           n_points: int = 400, s_range=(1e-3, 1e3)):
    """Score entropy at one masked position (clean token ``x0``, vocabulary of ``V`` with [MASK] =
    ``mask_id``) as the score s(x0) of the right token sweeps ``s_range`` (log-spaced); every other
    score is 0, except token 0's, set to ``wrong_score`` when it is > 0. Computed with
    ``losses.score_entropy`` in float64. Returns (s (n,), loss (n,))."""
    from .losses import score_entropy

    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma: expected a finite value > 0, got {sigma!r}")
    if not wrong_score >= 0:
        raise ValueError(f"wrong_score: expected >= 0, got {wrong_score!r}")
    if not (0 <= x0 < V and 0 <= mask_id < V and x0 != mask_id and x0 != 0 and mask_id != 0):
        raise ValueError(f"x0, mask_id: expected two different tokens in 1..{V - 1} (token 0 is the wrong one)")
    s = torch.logspace(math.log10(s_range[0]), math.log10(s_range[1]), n_points, dtype=torch.float64)
    log_s = torch.full((n_points, 1, V), -math.inf, dtype=torch.float64)   # every score 0 ...
    log_s[:, 0, x0] = s.log()                                                # ... except s(x0)
    if wrong_score > 0:
        log_s[:, 0, 0] = math.log(wrong_score)                               # and one wrong token
    ell = score_entropy(log_s, torch.full((n_points, 1), x0), torch.full((n_points, 1), mask_id),
                        torch.full((n_points,), float(sigma), dtype=torch.float64), mask_id)
    return s, ell[:, 0]


def score_entropy_curves(sigma: float = 0.5, wrong_score: float = 0.0, background=(0.1, 0.5, 2.0), ax=None):
    """Lesson 12's loss curve (the figure its slider redraws): score entropy against s(x0) on a log
    axis at ``sigma`` (bold) and at the ``background`` sigmas (grey), with the true ratio
    a = 1/(e^sigma - 1) dashed. Returns the Axes."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    a = 1 / math.expm1(sigma)
    for sig in background:
        s, ell = score_entropy_vs_score(sig)
        ax.plot(s.numpy(), ell.numpy(), color="gray", lw=0.8, alpha=0.6)
    s, ell = score_entropy_vs_score(sigma, wrong_score)
    ax.plot(s.numpy(), ell.numpy(), lw=2, label=f"sigma = {sigma:.2f}, wrong score = {wrong_score:.1f}")
    ax.axvline(a, color="tab:red", ls="--", label=f"true ratio a = 1/(e^sigma - 1) = {a:.3f}")
    ax.set(xscale="log", ylim=(0, 5), xlabel="s(x0), the score of the right token", ylabel="score entropy")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def loss_history(history, ax=None):
    """A training loss per step on a log axis (lesson 12's toy score model). Returns the Axes."""
    if len(history) == 0:
        raise ValueError("history: expected at least one loss value")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(list(history), lw=0.6)
    ax.set(xlabel="step", ylabel="score entropy (per token)", yscale="log")
    ax.figure.tight_layout()
    return ax


def ratio_bars(panels, names: str = "ABCD", axes=None):
    """Learned ratios against the truth, one panel per context: ``panels`` is a list of
    (label, true (K,), learned (K,)) with true = P(x1 | context) and learned = s(y) / a. The title
    prints the learned sum. Returns the Figure."""
    if not panels:
        raise ValueError("panels: expected at least one (label, true, learned) triple")
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 2.8), sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, (label, true, learned) in zip(axes, panels):
        true, learned = torch.as_tensor(true, dtype=torch.float64), torch.as_tensor(learned, dtype=torch.float64)
        K = len(true)
        ax.bar((torch.arange(K) - 0.2).numpy(), true.numpy(), 0.4, label="true P(x1 | context)")
        ax.bar((torch.arange(K) + 0.2).numpy(), learned.numpy(), 0.4, label="learned s(y) / a")
        ax.set_xticks(range(K), list(names[:K]))
        ax.set_title(f"{label}: sum s/a = {float(learned.sum()):.3f}", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
