"""Figures of lesson 04 (the factorized reverse process): what a factorized T-step sampler costs on
the two-token "New York / Los Angeles" world (the lesson's c slider), and the order in which a
sampler reveals the positions of a row."""
from __future__ import annotations

import math

import torch

from .viz import _plt


def binary_entropy_bits(c: float) -> float:
    """H_2(c) = -c log2 c - (1 - c) log2 (1 - c), with 0 log 0 = 0."""
    return -sum(p * math.log2(p) for p in (c, 1 - c) if p > 0)


def incoherent_share(c: float, T):
    """P(incoherent pair) after T ancestral steps with a perfect denoiser, when the two words form
    a coherent pair with probability c: both revealed in the same step (probability 1/T), they are
    drawn independently from their 50/50 marginals and clash half the time; otherwise the second
    is drawn given the first, and clashes as often as the data does, 1 - c."""
    T = torch.as_tensor(T, dtype=torch.float64)
    return 0.5 / T + (1 - 1 / T) * (1 - c)


def nelbo_bits(c: float, T):
    """The T-step NELBO of the perfect denoiser in bits per pair: H(x0) + I / T, with
    H(x0) = 1 + H_2(c) and I = 1 - H_2(c) the mutual information of the two words."""
    h = binary_entropy_bits(c)
    return (1 + h) + (1 - h) / torch.as_tensor(T, dtype=torch.float64)


def factorization_cost_figure(c: float = 1.0, max_T: int = 32, sampled_T=None, sampled=None, axes=None):
    """Lesson 04, the c slider. Left: P(incoherent pair) against the number of steps T for a
    factorized sampler with a perfect denoiser (``incoherent_share``), over the data's own 1 - c;
    ``sampled_T``/``sampled`` add measured points (the lesson's ancestral runs, made at c = 1).
    Right: the T-step NELBO against the entropy of the data; the gap is I / T. Returns the two
    Axes."""
    if not 0.5 <= c <= 1.0:
        raise ValueError(f"c: expected a probability in [0.5, 1], got {c}")
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    T = torch.arange(1, max_T + 1)
    h = binary_entropy_bits(c)
    axes[0].plot(T, incoherent_share(c, T), label="factorized sampler, T steps")
    axes[0].axhline(1 - c, ls="--", color="gray", label=f"the data itself: 1 - c = {1 - c:.2f}")
    if sampled is not None:
        axes[0].plot(sampled_T, sampled, "o", label="sampled in the lesson (c = 1)")
    axes[0].set(xlabel="steps T", ylabel="P(incoherent pair)", ylim=(0, 0.55))
    axes[0].legend()
    axes[1].plot(T, nelbo_bits(c, T), label="NELBO_T")
    axes[1].axhline(1 + h, ls="--", color="gray", label=f"entropy H = {1 + h:.3f} bits")
    axes[1].set(xlabel="steps T", ylabel="bits per sequence", ylim=(0.9, 2.1),
                title=f"mutual information I = {1 - h:.3f} bits; gap = I / T")
    axes[1].legend()
    axes[0].figure.tight_layout()
    return axes


def reveal_order_strips(reveal_rows, labels, title: str = "", axes=None):
    """Lesson 04, section 6: one strip per sampler run, a colour per position for the step that
    revealed it (dark early, light late). reveal_rows: (L,) step tensors (``trace.reveal_step[0]``);
    labels: one label per strip. Returns the Axes."""
    if len(reveal_rows) != len(labels) or not labels:
        raise ValueError("reveal_rows, labels: expected the same number (at least 1) of each")
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(len(labels), 1, figsize=(11, 1.1 + 0.75 * len(labels)), sharex=True, squeeze=False)
        axes = axes[:, 0]
    for ax, steps, label in zip(axes, reveal_rows, labels):
        ax.imshow(torch.as_tensor(steps).reshape(1, -1).numpy(), aspect="auto", cmap="viridis")
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    axes[-1].set_xlabel("position in the row (colour = the step that revealed it: dark early, light late)")
    if title:
        axes[0].figure.suptitle(title)
    axes[0].figure.tight_layout()
    return axes
