"""Figures of lesson 09 (Eso-LM's attention masks) beyond the single heatmap of ``viz``: a row of
named masks, the sequential-phase mask over [z0 ; x] with its halves marked, and the mask
explorer's two views (sorted and original order) as one static figure, for readers whose
notebook viewer shows no widgets (GitHub, nbviewer, exported HTML)."""
from __future__ import annotations

import torch

from .viz import _plt, attention_mask_heatmap

CLEAN_RED = "#d1242f"       # the clean/[MASK] boundary, as ``attention_mask_heatmap`` draws it


def mask_row(masks: dict, axes=None, side: float = 3.75):
    """Boolean (L, L) masks side by side, one panel per entry of ``masks`` (title -> mask), e.g.
    causal, bidirectional, prefix and mixed. Returns the Figure."""
    if not masks:
        raise ValueError("masks: expected at least one (title -> mask) entry")
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, len(masks), figsize=(side * len(masks), side + 0.25), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, (title, m) in zip(axes, masks.items()):
        attention_mask_heatmap(m, ax=ax, title=title)
    fig.tight_layout()
    return fig


def sequential_mask_panels(masks: dict, n_clean: int, tick_labels=None, axes=None):
    """Eso-LM's sequential-phase masks over [z0 ; x] (each (2L, 2L) bool), one panel per entry of
    ``masks`` (variant -> mask). Black lines split the z0 half from the x half; red lines mark the
    ``n_clean`` clean slots at the start of each half. Returns the Figure."""
    if not masks:
        raise ValueError("masks: expected at least one (variant -> mask) entry")
    sizes = {tuple(m.shape) for m in masks.values()}
    if len(sizes) != 1 or any(q != k or q % 2 for q, k in sizes):
        raise ValueError(f"masks: expected square (2L, 2L) masks of one size, got {sorted(sizes)}")
    L = next(iter(sizes))[0] // 2
    if not 0 <= n_clean <= L:
        raise ValueError(f"n_clean: expected 0..{L}, got {n_clean}")
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, len(masks), figsize=(6.5 * len(masks), 6.4), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, (variant, m) in zip(axes, masks.items()):
        attention_mask_heatmap(m, ax=ax, tick_labels=tick_labels, n_clean=n_clean,
                               title=f"sequential phase, variant {variant}")
        for edge, colour in ((L, "black"), (L + n_clean, CLEAN_RED)):    # the halves; the clean slots of x
            ax.axhline(edge - 0.5, color=colour, linewidth=1.6)
            ax.axvline(edge - 0.5, color=colour, linewidth=1.6)
    fig.tight_layout()
    return fig


def explorer_mask(L: int = 8, n_clean: int | None = None, variant: str = "B", view: str = "sorted",
                  seed: int = 0):
    """What ``mask_explorer(L, seed)`` shows for one setting, without a widget: (mask (L, L) bool,
    tick labels, sort index (L,)). The clean positions are the first ``n_clean`` of a random order
    drawn from ``seed`` (default L // 2, the explorer's start); ``view`` is "sorted" (clean slots
    first) or "original order" (the same mask, each token back at its position)."""
    from .masks import esolm_diffusion_mask, inverse_permutation, sort_indices

    if isinstance(L, bool) or not isinstance(L, int) or not 2 <= L <= 32:
        raise ValueError(f"L: expected an int in [2, 32], got {L!r}")
    n = L // 2 if n_clean is None else n_clean
    if not 0 <= n <= L:
        raise ValueError(f"n_clean: expected 0..{L}, got {n_clean}")
    if view not in ("sorted", "original order"):
        raise ValueError(f"view: expected 'sorted' or 'original order', got {view!r}")
    order = torch.randperm(L, generator=torch.Generator().manual_seed(seed))
    is_masked = torch.ones(L, dtype=torch.bool)
    is_masked[order[:n]] = False
    idx = sort_indices(is_masked[None], shuffle=False)[0]                 # sorted slot -> position
    m = esolm_diffusion_mask(n, L, variant)
    if view == "sorted":
        return m, [f"{'m' if is_masked[p] else 'c'}@{int(p)}" for p in idx], idx
    inv = inverse_permutation(idx[None])[0]                               # position -> sorted slot
    return m[inv][:, inv], [f"{'m' if is_masked[p] else 'c'}@{p}" for p in range(L)], idx


def explorer_views(L: int = 8, n_clean: int | None = None, variant: str = "B", seed: int = 0, axes=None):
    """The mask explorer's setting drawn twice, sorted and in the original order, side by side:
    the static figure beside ``mask_explorer`` (lesson 09). Returns the Figure."""
    plt = _plt()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.4, 4.8))
    fig = axes[0].figure
    for ax, view in zip(axes, ("sorted", "original order")):
        m, labels, _ = explorer_mask(L, n_clean, variant, view, seed)
        n = int((~torch.tensor([s.startswith("m") for s in labels])).sum())
        attention_mask_heatmap(m, ax=ax, tick_labels=labels, n_clean=n if view == "sorted" else None,
                               title=f"variant {variant}, {n} clean, {view}")
    fig.tight_layout()
    return fig
