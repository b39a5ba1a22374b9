"""The NELBO derivation as one picture (lesson 05): the masking chain x_0 -> x_{1/T} -> ... -> x_1
(all [MASK]) and the bound as a sum of one KL term per reverse step, plus the prior term (0).

Below it, the other figures of lesson 05. Pure renderers: each returns a matplotlib Figure and shows
nothing.
"""
from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

MASK_COLOR, CLEAN_COLOR, NEW_COLOR = "#c9c9c9", "#e8f1fb", "tab:orange"


def _time_label(j: int, T: int) -> str:
    f = Fraction(j, T)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def nelbo_chain_figure(T: int = 4, words=("Tom", "had", "a", "red", "ball", "."), seed: int = 0) -> Figure:
    """Draw the T-step masking chain of ``words`` and the NELBO as a sum of per-step KL terms.

    Row j shows x_t at t = j/T (log-linear masking: each token is masked at a time u drawn once, so
    it stays masked from then on; x_1 is all [MASK]). Arrows: q masks going down, p_theta reveals
    going up. Beside each reverse step i (t = i/T -> s = (i-1)/T) its term
    KL_i = r_i * sum of the CE at the masked positions of x_t, r_i = (alpha_s - alpha_t)/(1 - alpha_t)
    = 1/i; tokens that step i reveals have an orange edge. Returns the Figure (lesson 05).
    """
    if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= 10:
        raise ValueError(f"T: expected an int in 1..10 (one row per step), got {T!r}")
    words = [str(w) for w in words]
    if not 1 <= len(words) <= 12:
        raise ValueError(f"words: expected 1 to 12 tokens, got {len(words)}")
    L = len(words)
    g = torch.Generator().manual_seed(int(seed))
    u = (torch.randperm(L, generator=g).double() + 0.5) / L          # (L,) the time each token is masked
    masked = [[bool(u[l] < j / T) for l in range(L)] for j in range(T + 1)]   # state j: t = j/T
    for l in range(L):
        masked[T][l] = True                                               # x_1: all [MASK]

    box_w, gap, h, box_h = 1.0, 0.12, 1.0, 0.62
    x_tok = 1.9
    x_arrow = x_tok + L * (box_w + gap) + 0.25
    x_text = x_arrow + 0.9
    fig = plt.figure(figsize=(13, 0.75 * (T + 1) + 1.2))
    ax = fig.add_axes([0.0, 0.0, 1.0, 1.0])
    ax.set_xlim(0, x_text + 9.4)
    ax.set_ylim(-1.45, T * h + 0.75)
    ax.axis("off")

    def y_of(j):            # x_0 on top, x_1 at the bottom
        return (T - j) * h

    for j in range(T + 1):
        y = y_of(j)
        name = "x_0" if j == 0 else "x_1" if j == T else f"x_{{{_time_label(j, T)}}}"
        ax.text(x_tok - 0.2, y, f"${name}$  (t = {_time_label(j, T)})", ha="right", va="center", fontsize=10)
        for l, w in enumerate(words):
            is_mask = masked[j][l]
            revealed = j < T and is_mask is False and masked[j + 1][l]      # revealed by the step t(j+1) -> t(j)
            rect = Rectangle((x_tok + l * (box_w + gap), y - box_h / 2), box_w, box_h,
                             facecolor=MASK_COLOR if is_mask else CLEAN_COLOR,
                             edgecolor=NEW_COLOR if revealed else "black", linewidth=2.2 if revealed else 0.8)
            rect.set_gid("token-mask" if is_mask else "token")
            ax.add_patch(rect)
            ax.text(x_tok + l * (box_w + gap) + box_w / 2, y, "[M]" if is_mask else w,
                    ha="center", va="center", fontsize=9, color="0.35" if is_mask else "black")

    for i in range(1, T + 1):          # reverse step i: x_{i/T} -> x_{(i-1)/T}, rows i and i - 1
        y_hi, y_lo = y_of(i - 1) - 0.12, y_of(i) + 0.12
        ax.annotate("", xy=(x_arrow, y_lo), xytext=(x_arrow, y_hi), gid="arrow-q",
                    arrowprops=dict(arrowstyle="-|>", color="0.45", lw=1.3))
        ax.annotate("", xy=(x_arrow + 0.4, y_hi), xytext=(x_arrow + 0.4, y_lo), gid="arrow-p",
                    arrowprops=dict(arrowstyle="-|>", color="tab:blue", lw=1.8))
        t = _time_label(i, T)
        xt = "x_1" if i == T else f"x_{{{t}}}"
        term = (rf"step {i}:  $\mathrm{{KL}}_{{{i}}} = r_{{{i}}}\,\times$ (sum of the CE at the [M] of ${xt}$),"
                rf"  $r_{{{i}}} = \dfrac{{\alpha_s - \alpha_t}}{{1 - \alpha_t}} = {'1' if i == 1 else f'1/{i}'}$")
        if i == 1:
            term += "  (reconstruction)"
        ax.text(x_text, (y_of(i) + y_of(i - 1)) / 2, term, ha="left", va="center", fontsize=10, gid="kl-term")

    ax.text(x_arrow - 0.05, T * h + 0.5, "q: masks", ha="center", va="center", fontsize=8.5, color="0.35")
    ax.text(x_arrow + 0.6, T * h + 0.5, r"$p_\theta$: reveals", ha="left", va="center", fontsize=8.5,
            color="tab:blue")
    ax.text(x_text, y_of(T) - 0.62,
            r"prior: $\mathrm{KL}(q(x_1 \mid x_0)\,\|\,p(x_1)) = 0$ (both are all [MASK])",
            ha="left", va="center", fontsize=9.5, gid="prior-term")
    ax.text(x_tok, -1.15,
            r"$-\log p_\theta(x_0) \;\leq\; \mathrm{NELBO}_T = 0 + \sum_{i=1}^{T} \mathbb{E}_{q}[\mathrm{KL}_i]$"
            "    (log-linear $\\alpha_t = 1 - t$; gray: [MASK]; orange edge: revealed by that reverse step)",
            ha="left", va="center", fontsize=10.5, gid="nelbo-sum")
    return fig


# ----------------------------------------------------------------------------- lesson 05's plots
# Pure renderers: the notebook computes every number, these functions only draw it.

def weight_curves(ts, alphas: dict, weights: dict) -> Figure:
    """Lesson 05, section 2: alpha_t (left) and the NELBO weight w(t) on a log scale (right), one
    line per schedule. ``alphas`` and ``weights`` map a schedule name to its values at ``ts``."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
    for name in alphas:
        ax[0].plot(ts, alphas[name], label=name)
        ax[1].plot(ts, weights[name], label=name)
    ax[0].set_xlabel("t")
    ax[0].set_ylabel("alpha_t = P(token still clean)")
    ax[0].legend()
    ax[1].set_xlabel("t")
    ax[1].set_ylabel("w(t) = -alpha'(t) / (1 - alpha(t))")
    ax[1].set_yscale("log")
    ax[1].legend()
    ax[1].set_title("NELBO weights (log-linear: exactly 1/t)")
    fig.tight_layout()
    return fig


def equal_areas(t, integrands: dict, areas_bits: dict, every: int = 500) -> Figure:
    """Lesson 05, section 3: the integrand w(t) f(alpha_t) of each schedule (every ``every``-th
    point of ``t``), labelled with its area in bits (``areas_bits``, computed by the notebook)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for name, integrand in integrands.items():
        ax.plot(t[::every], integrand[::every], label=f"{name}: area {areas_bits[name]:.3f} bits")
    ax.set_xlabel("t")
    ax.set_ylabel("w(t) f(alpha_t)")
    ax.set_title("Different integrands, the same area")
    ax.legend()
    fig.tight_layout()
    return fig


def power_schedules(ts, alphas: dict) -> Figure:
    """Lesson 05, task 5.3: the schedules alpha_t = 1 - t^k, one line per k (``alphas``: k -> values)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for k, alpha in alphas.items():
        ax.plot(ts, alpha, label=f"k = {k}")
    ax.set_xlabel("t")
    ax.set_ylabel("alpha_t = 1 - t^k")
    ax.set_title("The schedules of task 5.3")
    ax.legend()
    fig.tight_layout()
    return fig


def steps_bound(Ts, toy_bits, exact_bits: float, L: int, K: int, published: dict, published_continuous: float) -> Figure:
    """Lesson 05, section 4: left, the toy's NELBO_T in bits (``toy_bits`` at ``Ts``) above its exact
    value (``exact_bits``, the toy of L copies of one of K tokens); right, MDLM's published perplexity
    bounds on LM1B (``published``: T -> bound) above the continuous-time bound."""
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
    ax[0].plot(Ts, toy_bits, "o-", label="NELBO_T (toy, exact)")
    ax[0].axhline(exact_bits, ls="--", color="gray", label="continuous = -log2 p")
    ax[0].set_xscale("log")
    ax[0].set_xlabel("steps T")
    ax[0].set_ylabel("bits per sequence")
    ax[0].set_title(f"Toy: {L} copies of one of {K} tokens")
    ax[0].legend()
    ax[1].plot(list(published), list(published.values()), "o-", color="tab:red", label="MDLM, T steps")
    ax[1].axhline(published_continuous, ls="--", color="gray", label=f"continuous-time bound {published_continuous}")
    for T, ppl in published.items():
        ax[1].annotate(f"{ppl}", (T, ppl), textcoords="offset points", xytext=(5, 5))
    ax[1].set_xscale("log")
    ax[1].set_xlabel("steps T")
    ax[1].set_ylabel("perplexity bound")
    ax[1].set_title("MDLM on LM1B (published)")
    ax[1].legend()
    fig.tight_layout()
    return fig


def depth_curve(levels, c_t, area: float) -> Figure:
    """Lesson 05, section 5: the shipped model's cross-entropy per hole ``c_t`` at each masking level,
    the area under it shaded and named in the title (``area``, computed by the notebook)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(levels, c_t, "o-")
    ax.fill_between(levels, c_t, alpha=0.2)
    ax.set_xlabel("masking level t (share of tokens masked)")
    ax.set_ylabel("CE per masked token (nats)")
    ax.set_title(f"Shipped MDM: area under the curve ~ {area:.3f} nats/token")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    return fig


def model_steps_bound(T_list, nelbo_T, nelbo: float) -> Figure:
    """Lesson 05, section 6: the shipped model's T-step NELBO (Monte Carlo, ``nelbo_T`` at ``T_list``)
    above its continuous-time NELBO ``nelbo``, in nats per token."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(T_list, nelbo_T, "o-", label="NELBO_T (Monte Carlo)")
    ax.axhline(nelbo, ls="--", color="gray", label=f"continuous: {nelbo:.3f}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("steps T")
    ax.set_ylabel("nats per token")
    ax.set_title("Shipped MDM: more steps, tighter bound")
    ax.legend()
    fig.tight_layout()
    return fig
