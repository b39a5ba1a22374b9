"""Lesson 07's figures: tokens revealed per step, the order of commitment under each remasking rule
and inside blocks, what temperature, top-k and top-p do to a proposal, and two confidence heatmaps
side by side. Pure renderers: the notebook runs the samplers, each function only draws their
traces and returns the Figure (it shows nothing)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .viz import confidence_heatmap


def reveals_per_step(per_step, average: float, nfe: int, sampler: str = "ancestral") -> Figure:
    """Lesson 07, section 1: a bar per step, the tokens it revealed (``per_step``), with the dashed
    ``average`` (L - 1) / T; the title names the ``sampler``, T and its ``nfe`` network calls."""
    T = len(per_step)
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.bar(range(1, T + 1), per_step.numpy())
    ax.axhline(average, color="k", linestyle="--", label="(L - 1) / T on average")
    ax.set(xlabel="step", ylabel="tokens revealed", title=f"{sampler}, T = {T}: {nfe} network calls")
    ax.legend()
    return fig


def reveal_heatmaps(reveal_steps: dict, steps: int) -> Figure:
    """Lesson 07, section 3: one panel per remasking rule (``reveal_steps``: name -> a trace's
    (B, L) reveal_step), each story a row coloured by the step (1..``steps``) that committed each
    position, with one shared colour bar."""
    fig, axes = plt.subplots(1, len(reveal_steps), figsize=(11, 3), sharey=True, squeeze=False)
    for ax, (name, reveal) in zip(axes[0], reveal_steps.items()):
        im = ax.imshow(reveal.numpy(), cmap="turbo", aspect="auto", vmin=1, vmax=steps, interpolation="nearest")
        ax.set(title=name, xlabel="position", ylabel="story")
    fig.colorbar(im, ax=axes[0], label="step of commitment")
    return fig


def block_heatmap(reveal_step, block_length: int) -> Figure:
    """Lesson 07, section 4: the step that committed each position of each story (``reveal_step``,
    (B, L), position 0 the prompt), white lines between the blocks of ``block_length`` slots."""
    n_blocks = math.ceil((reveal_step.shape[1] - 1) / block_length)
    fig, ax = plt.subplots(figsize=(8, 3))
    im = ax.imshow(reveal_step.numpy(), cmap="turbo", aspect="auto", interpolation="nearest")
    for b in range(1, n_blocks):
        ax.axvline(b * block_length + 0.5, color="white", linewidth=2)
    ax.set(title=f"low confidence inside {n_blocks} blocks of {block_length}, decoded left to right",
           xlabel="position", ylabel="story")
    fig.colorbar(im, ax=ax, label="step of commitment")
    return fig


def proposal_shapes(words, shapes: dict) -> Figure:
    """Lesson 07, section 5: one bar chart per distribution over ``words`` (``shapes``: name -> the
    probabilities after temperature, top-k or top-p), side by side on one y scale."""
    fig, axes = plt.subplots(1, len(shapes), figsize=(13, 2.6), sharey=True, squeeze=False)
    for ax, (name, p) in zip(axes[0], shapes.items()):
        ax.bar(words, p.numpy())
        ax.set_title(name)
        ax.tick_params(axis="x", rotation=60)
    return fig


def confidence_pair(top, bottom,
                    titles=("low confidence first: commits take the most confident proposals",
                            "ancestral: commits fall anywhere, confident or not")) -> Figure:
    """Lesson 07, section 6: ``minidlm.viz.confidence_heatmap`` of two traces, one above the other
    (by default low confidence first above, ancestral below)."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 7))
    confidence_heatmap(top, ax=axes[0], title=titles[0])
    confidence_heatmap(bottom, ax=axes[1], title=titles[1])
    fig.tight_layout()
    return fig
