"""Lesson 10's alpha0 figure: the schedule alpha_t = alpha0 (1 - t), the diffusion weight
alpha0 / (1 - alpha_t), and how ``esolm_schedule`` splits a sample between the two phases. The
static figure and the slider draw it the same way. Below it, the lesson's other figures (decode
order, cache size, speed against length, the spectrum)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ._validate import check_positive_int
from .esolm import _check_alpha0, esolm_schedule
from .schedules import EsoLMSchedule


def alpha0_figure(alpha0: float = 0.25, n: int = 63, generator=0):
    """Three panels for one alpha0: the share of clean tokens alpha_t, the weight (log scale; it is 0
    at alpha0 = 0), and the step sizes of one ``esolm_schedule(n, alpha0, generator=generator)`` draw
    (blue: diffusion steps, orange: sequential). Returns (figure, n_diffusion, sizes)."""
    alpha0 = _check_alpha0(alpha0)
    check_positive_int("n", n)
    t = torch.linspace(0.001, 1, 200, dtype=torch.float64)
    sched = EsoLMSchedule(alpha0)
    n_diff, sizes = esolm_schedule(n, alpha0, generator=generator)
    n_steps_diff = len(sizes) - (n - n_diff)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 3.2))
    a1.plot(t, sched.alpha(t), label=r"$\alpha_t = \alpha_0 (1 - t)$")
    a1.set_ylim(0, 1.05)
    a1.set_xlabel("t")
    a1.set_title("share of clean tokens")
    a1.legend(fontsize=8)
    if alpha0 > 0:
        a2.plot(t, sched.weight(t))
        a2.set_yscale("log")
    a2.set_xlabel("t")
    a2.set_title(r"diffusion weight $\alpha_0 / (1 - \alpha_t)$")
    colours = ["tab:blue"] * n_steps_diff + ["tab:orange"] * (n - n_diff)
    a3.bar(range(1, len(sizes) + 1), sizes, color=colours)
    a3.set_xlabel("step")
    a3.set_ylabel("tokens decoded")
    a3.set_title(f"alpha0 = {alpha0:g}: {n_diff} by diffusion (blue), {n - n_diff} sequential (orange)", fontsize=9)
    fig.tight_layout()
    return fig, n_diff, sizes


# ----------------------------------------------------------------------------- lesson 10's plots
# Pure renderers: the notebook samples, measures and times, these functions only draw the results.

def decode_order(step, phase):
    """Lesson 10, section 2: the step at which each position after the prompt was decoded (``step``,
    positions 1..len(step)), by phase (``phase``: True where diffusion decoded it). Returns the Figure."""
    pos = torch.arange(1, len(step) + 1)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.scatter(pos[phase], step[phase], label="diffusion phase (parallel, random order)", s=18)
    ax.scatter(pos[~phase], step[~phase], label="sequential phase (one per step, left to right)", s=18)
    ax.set_xlabel("position")
    ax.set_ylabel("decoded at step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cache_size(lengths, measured: dict, formula: dict, cache_lengths):
    """Lesson 10, section 3: left, the KV cache's measured peak and the formula's size in KiB at each
    length (``measured``, ``formula``: L -> bytes); right, the clean tokens in the cache after each
    step of one sample (``cache_lengths``). Returns the Figure."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.3))
    a1.plot(lengths, [measured[L_] / 1024 for L_ in lengths], "o-", label="measured peak")
    a1.plot(lengths, [formula[L_] / 1024 for L_ in lengths], "--", label="2 n_layer B L d_model 4 bytes")
    a1.set_xlabel("length L")
    a1.set_ylabel("KV cache (KiB)")
    a1.legend(fontsize=8)
    a2.plot(range(1, len(cache_lengths) + 1), cache_lengths, ".-")
    a2.set_xlabel("step")
    a2.set_ylabel("clean tokens in the cache")
    a2.set_title("the sample above: the cache grows by the previous step's tokens", fontsize=9)
    fig.tight_layout()
    return fig


def live_speed(lengths, timings: dict):
    """Lesson 10, section 4: seconds per sample against length, log-log, one line per sampler
    (``timings``: name -> seconds at each of ``lengths``), timed live. Returns the Figure."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, t in timings.items():
        ax.plot(lengths, t, "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens L (NFE = L)")
    ax.set_ylabel("seconds per sample")
    ax.set_title("live, this machine, batch 1", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


BENCH_STYLES = {("mdlm_uncached", "T=L"): "s-", ("esolm_cached", "T=L"): "o-", ("ar_cache", "T=L"): "^-",
                ("mdlm_uncached", "T=L/4"): "s--", ("esolm_cached", "T=L/4"): "o--"}


def bench_speed(res: dict, title: str):
    """Lesson 10, section 4: one recorded esolm_speed benchmark (``res``, its JSON): seconds against
    L, log-log, one line per sampler and step budget present in its rows; ``title``: the file's
    name. Returns the Figure."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for (name, budget), style in BENCH_STYLES.items():
        pts = sorted((r["L"], r["seconds"]) for r in res["rows"] if r["sampler"] == name and r["budget"] == budget)
        if pts:
            ax.plot(*zip(*pts), style, label=f"{name} ({budget})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens L")
    ax.set_ylabel("seconds")
    ax.set_title(f"{title} ({res['device']})", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


SPECTRUM_STYLES = {"AR": ("*", 13, "AR"), "B": ("o-", 6, "Eso-LM, variant B"), "A": ("s-", 6, "Eso-LM, variant A"),
                   "MDM": ("D", 8, "MDM (MDLM NELBO)")}


def spectrum_plot(spectrum: list, source: str):
    """Lesson 10, section 5: the perplexity bound against alpha0, one line or point (and one legend
    entry) per variant present in ``spectrum`` (records with "variant", "alpha0", "ppl_bound");
    ``source`` names where the numbers come from. Returns the Figure."""
    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    for v, (style, size, label) in SPECTRUM_STYLES.items():
        pts = sorted((r["alpha0"], r["ppl_bound"]) for r in spectrum if r["variant"] == v)
        if pts:
            ax.plot(*zip(*pts), style, markersize=size, label=label)
    ax.set_xlabel(r"$\alpha_0$ (share decoded by diffusion)")
    ax.set_ylabel("perplexity bound exp(NELBO)")
    ax.set_title(source, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
