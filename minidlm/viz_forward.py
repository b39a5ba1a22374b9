"""Figures of lesson 02 (the forward process): the number of masked tokens against its binomial
law, a learner's schedule over the reference, independent against antithetic times, and the step
at which the exact reverse walk reveals a token."""
from __future__ import annotations

import torch

from .viz import _plt


def mask_count_figure(counts: torch.Tensor, L: int, p_mask: float, ax=None):
    """Lesson 02, section 1: a histogram of ``counts`` (the number of masked tokens in each draw)
    over the Binomial(L, p_mask) probabilities it should follow. Returns the Axes."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    k = torch.arange(L + 1)
    pmf = torch.distributions.Binomial(L, probs=torch.tensor(float(p_mask))).log_prob(k.float()).exp()
    ax.hist(torch.as_tensor(counts).numpy(), bins=(torch.arange(L + 2) - 0.5).numpy(), density=True,
            alpha=0.6, label="mask_tokens")
    ax.plot(k.numpy(), pmf.numpy(), "k.-", label=f"Binomial(L={L}, {p_mask:.2f})")
    ax.set(xlabel="number of masked tokens", ylabel="share of draws",
           xlim=(0, min(L, L * p_mask + 4 * (L * p_mask * (1 - p_mask)) ** 0.5 + 4)))
    ax.legend()
    return ax


def schedule_vs_reference(t, alpha_mine, w_mine, reference, axes=None):
    """Lesson 02, task 2.2: a learner's alpha(t) and w(t) (dots) over a reference ``Schedule``
    (lines), w on a log scale. Returns the two Axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3))
    t = torch.as_tensor(t)
    axes[0].plot(t, reference.alpha(t), "k-", label="minidlm")
    axes[0].plot(t, torch.as_tensor(alpha_mine), "o", ms=3, label="yours")
    axes[1].plot(t, reference.weight(t), "k-")
    axes[1].plot(t, torch.as_tensor(w_mine), "o", ms=3)
    axes[0].set(title="alpha(t)", xlabel="t")
    axes[1].set(title="w(t)", xlabel="t", yscale="log")
    axes[0].legend()
    return axes


def times_figure(independent, antithetic, axes=None):
    """Lesson 02, section 4: the times of a few batches, one batch per row, drawn independently
    (left) and antithetically (right). independent, antithetic: lists of (B,) tensors. Returns
    the two Axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 2.6), sharey=True)
    for ax, batches, title in [(axes[0], independent, "independent times"),
                               (axes[1], antithetic, "antithetic times")]:
        for k, times in enumerate(batches):
            ax.plot(torch.as_tensor(times).numpy(), [k] * len(times), "o", ms=4)
        ax.set(title=title, xlabel="t", xlim=(0, 1))
    axes[0].set_ylabel("batch")
    return axes


def reveal_step_bars(share, ax=None):
    """Lesson 02, section 5: the share of tokens revealed at each step 1..T of the exact reverse
    walk (``share``: (T,) values), against the uniform 1/T. Returns the Axes."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.8))
    share = torch.as_tensor(share)
    T = share.numel()
    ax.bar(range(1, T + 1), share.numpy())
    ax.axhline(1 / T, color="k", linestyle="--", label="1/T")
    ax.set(xlabel="step at which a token is revealed", ylabel="share of tokens")
    ax.legend()
    return ax
