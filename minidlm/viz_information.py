"""Figures of lesson 03 (cross-entropy, KL, entropy): the surprise of each token of a story, the
terms of H(P) and H(P, Q), the cross-entropy as the model's Q moves (the lesson's slider),
binary cross-entropy, the cost of confident mistakes and the focal loss."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import losses
from .viz import _plt


def surprise_bars(bits, labels, ax=None, title="Bigram model: -log2 p(next token | previous token) along one story"):
    """Lesson 03, section 1: one bar per token, its surprise in bits, labelled with the token.
    Returns the Axes."""
    plt = _plt()
    bits = torch.as_tensor(bits)
    if len(labels) != bits.numel():
        raise ValueError(f"labels: expected {bits.numel()} labels, got {len(labels)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.2))
    ax.bar(range(bits.numel()), bits.numpy(), color="tab:blue")
    ax.set_xticks(range(bits.numel()))
    ax.set_xticklabels(labels, rotation=90, fontsize=8)
    ax.set(ylabel="surprise (bits)", title=title)
    ax.figure.tight_layout()
    return ax


def entropy_terms_figure(P, Q, words, axes=None):
    """Lesson 03, section 3. Left: the target P and the model Q side by side. Right: each
    outcome's term of H(P) = sum -P log2 P and of H(P, Q) = sum -P log2 Q; the title adds them up
    (and their difference, the KL). Returns the two Axes."""
    plt = _plt()
    P, Q = torch.as_tensor(P, dtype=torch.float64), torch.as_tensor(Q, dtype=torch.float64)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    x = torch.arange(len(words)).numpy()
    axes[0].bar(x - 0.2, P.numpy(), width=0.4, label="P (target)")
    axes[0].bar(x + 0.2, Q.numpy(), width=0.4, label="Q (model)")
    axes[0].set_xticks(x, words)
    axes[0].set(ylabel="probability", title="The cat lies on ___")
    axes[0].legend()
    h_terms = -torch.special.xlogy(P, P) / math.log(2)          # P(k) (-log2 P(k)), 0 log 0 = 0
    ce_terms = -torch.special.xlogy(P, Q) / math.log(2)         # P(k) (-log2 Q(k))
    axes[1].bar(x - 0.2, h_terms.numpy(), width=0.4, label="P(k) (-log2 P(k))  -> H(P)")
    axes[1].bar(x + 0.2, ce_terms.numpy(), width=0.4, label="P(k) (-log2 Q(k))  -> H(P,Q)")
    axes[1].set_xticks(x, words)
    axes[1].set(ylabel="bits", title=f"H(P) = {h_terms.sum():.3f}, H(P,Q) = {ce_terms.sum():.3f}, "
                                     f"KL = {(ce_terms - h_terms).sum():.3f}")
    axes[1].legend(fontsize=8)
    axes[0].figure.tight_layout()
    return axes


def cross_entropy_vs_q(P, q_first: float, q_last: float = 0.1, ax=None):
    """Lesson 03, the Q(rug) slider: for three outcomes, the model Q = [q, 1 - q_last - q, q_last]
    as q sweeps its range. Draws H(P, Q) against q (bits), the entropy H(P) dashed, and at
    q = ``q_first`` the KL as the gap between them. Returns the Axes."""
    plt = _plt()
    P = torch.as_tensor(P, dtype=torch.float64)
    top = 1.0 - q_last
    if P.numel() != 3 or not 0 < q_first < top:
        raise ValueError(f"expected a 3-outcome P and 0 < q_first < {top:.2f}, got {P.numel()} and {q_first}")
    grid = torch.linspace(0.02, top - 0.02, 200, dtype=torch.float64)
    Q_grid = torch.stack([grid, top - grid, torch.full_like(grid, q_last)], dim=1)       # (200, 3)
    ce_curve = losses.cross_entropy(P.expand(len(grid), 3), Q_grid, base=2)
    H = losses.entropy(P, base=2).item()
    q = torch.tensor([q_first, top - q_first, q_last], dtype=torch.float64)
    ce = losses.cross_entropy(P, q, base=2).item()
    kl = losses.kl_divergence(P, q, base=2).item()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(grid, ce_curve, label="H(P, Q)")
    ax.axhline(H, ls="--", color="gray", label=f"H(P) = {H:.3f}")
    ax.vlines(q_first, H, ce, color="tab:red", label=f"KL = {kl:.3f}")
    ax.plot([q_first], [ce], "o", color="tab:red")
    ax.set(xlabel=f"Q(rug)   (Q(floor) = {top:g} - Q(rug), Q(sofa) = {q_last:g})", ylabel="bits",
           ylim=(H - 0.15, max(3.2, H + 2)))
    ax.legend()
    ax.set_title(f"Q = [{q_first:.2f}, {top - q_first:.2f}, {q_last:.2f}]:  H(P,Q) = {ce:.3f} bits")
    return ax


def bce_figure(axes=None):
    """Lesson 03, section 5. Left: binary cross-entropy against the logit z for y = 1 and y = 0.
    Right: its second derivative sigma(z)(1 - sigma(z)), positive everywhere (convex in z).
    Returns the two Axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    z = torch.linspace(-6, 6, 200)
    axes[0].plot(z, F.softplus(-z), label="y = 1:  log(1 + e^-z)")
    axes[0].plot(z, F.softplus(z), label="y = 0:  log(1 + e^z)")
    axes[0].set(xlabel="logit z", ylabel="BCE (nats)", title="Binary cross-entropy against the logit")
    axes[0].legend()
    axes[1].plot(z, torch.sigmoid(z) * (1 - torch.sigmoid(z)))
    axes[1].set(xlabel="logit z", title="second derivative sigma(z)(1 - sigma(z)) > 0: convex")
    axes[0].figure.tight_layout()
    return axes


def confident_mistake_figure(marks=(0.9, 0.01), ax=None):
    """Lesson 03, section 6: the loss -ln p against the probability p given to the correct token,
    with the points at ``marks`` labelled. The title compares the first two marks. Returns the
    Axes."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    p = torch.linspace(0.001, 1, 400)
    ax.plot(p, -torch.log(p))
    for m in marks:
        ax.plot([m], [-math.log(m)], "o")
        ax.annotate(f"-ln {m} = {-math.log(m):.3f}", (m, -math.log(m)), textcoords="offset points", xytext=(10, 5))
    ax.set(xlabel="probability given to the correct token", ylabel="loss (nats)")
    if len(marks) >= 2:
        ratio = math.log(marks[1]) / math.log(marks[0])
        ax.set_title(f"A confident mistake costs ~{ratio:.0f} times more than a confident success gains")
    ax.figure.tight_layout()
    return ax


def focal_loss_figure(gammas=(0, 0.5, 1, 2, 5), ax=None):
    """Lesson 03, section 8: the focal loss -(1 - p)^gamma log p against p for each gamma
    (gamma = 0 is the cross-entropy). Returns the Axes."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    p = torch.linspace(0.01, 1, 300)
    for g in gammas:
        ax.plot(p, -(1 - p) ** g * torch.log(p), label=f"gamma = {g}" + ("  (cross-entropy)" if g == 0 else ""))
    ax.set(xlabel="probability of the correct class", ylabel="loss", ylim=(0, 4),
           title="Focal loss: -(1 - p)^gamma log p")
    ax.legend()
    ax.figure.tight_layout()
    return ax
