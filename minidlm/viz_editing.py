"""Figures of lesson 11 (editing and infilling): the step at which each masked position of an
infilled row was filled, and what k-least-confident editing finds and repairs as k grows."""
from __future__ import annotations

import torch

from .viz import _plt


def infill_steps_strip(reveal_step, given, ax=None, skip_first: bool = True):
    """One row as a coloured strip: each position the sampler filled, coloured by the step that
    filled it; given positions blank. ``reveal_step``: (L,) ints (a trace's ``reveal_step[row]``);
    ``given``: (L,) bool, True where the token was given. ``skip_first`` drops position 0 ([BOS]).
    Returns the Axes."""
    reveal_step, given = torch.as_tensor(reveal_step), torch.as_tensor(given)
    if reveal_step.dim() != 1 or given.shape != reveal_step.shape or given.dtype != torch.bool:
        raise ValueError(f"reveal_step, given: expected (L,) ints and (L,) bools, got "
                         f"{tuple(reveal_step.shape)} {reveal_step.dtype} and {tuple(given.shape)} {given.dtype}")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 1.4))
    steps = reveal_step.float().masked_fill(given, float("nan"))
    start = 1 if skip_first else 0
    ax.imshow(steps[None, start:].numpy(), aspect="auto", cmap="viridis", interpolation="nearest",
              extent=(start - 0.5, len(steps) - 0.5, 0.5, -0.5))
    ax.set_yticks([])
    ax.set_xlabel("position (coloured: the masked middle, by the step that filled it)")
    return ax


def edit_sweep_panels(ks, found: dict, valid_after: dict, n_stories: dict, axes=None):
    """k-least-confident editing against k, one panel per kind of corruption (lesson 11):
    ``found[kind]``, the share of stories whose swapped word was among the k re-masked tokens,
    and ``valid_after[kind]``, the share valid after the edit (both lists over ``ks``);
    ``n_stories[kind]`` labels the panel. Returns the Figure."""
    kinds = list(found)
    if not kinds or set(kinds) != set(valid_after) or any(len(found[k]) != len(ks) or len(valid_after[k]) != len(ks)
                                                          for k in kinds):
        raise ValueError("found, valid_after: expected the same kinds, each a list with one value per k")
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3), sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, kind in zip(axes, kinds):
        ax.plot(ks, found[kind], "o-", label="swapped word found")
        ax.plot(ks, valid_after[kind], "s--", label="story valid after the edit")
        ax.set(title=f"{n_stories[kind]} stories, {kind} swapped", xlabel="k (tokens re-masked)", xticks=list(ks),
               ylim=(0, 1.05))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
