"""Lesson 10's alpha0 figure: the schedule alpha_t = alpha0 (1 - t), the diffusion weight
alpha0 / (1 - alpha_t), and how ``esolm_schedule`` splits a sample between the two phases. The
static figure and the slider draw it the same way."""
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
