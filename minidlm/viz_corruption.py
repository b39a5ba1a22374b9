"""One story corrupted two ways, masking and uniform noise, side by side (lesson 15)."""
from __future__ import annotations

import torch

from .viz import TEXT_DARK, _plt, _story_hidden, token_pieces

REPLACED_RED = "#d1242f"    # a token the uniform process replaced


def _printable(pieces: list[str]) -> list[str]:
    """A random draw can be a byte-fallback token with no glyph in the font: show it as a dot."""
    return ["".join(ch if ch.isprintable() else "·" for ch in p) for p in pieces]


def corruption_rows_figure(tok, x0, rows_masked, rows_uniform, labels=None, width_chars: int = 44):
    """Lesson 15: one story corrupted two ways at a few t, one row per t: masking (left; masked
    slots grey boxes as wide as the hidden word) and uniform noise (right; a replaced token in red,
    though the model sees no colour: a uniform-noised token looks like any other word). x0: (L,)
    or (1, L) ids; rows_masked, rows_uniform: one (L,) id row per t; labels: one header per row.
    [BOS] and the [EOS] padding after the story are left out. Returns the Figure (2 Axes per row)."""
    from .viz_text_frames import _OVERHANG, _layout, _text_block

    x0 = torch.as_tensor(x0).reshape(-1)
    rows_masked = [torch.as_tensor(r).reshape(-1) for r in rows_masked]
    rows_uniform = [torch.as_tensor(r).reshape(-1) for r in rows_uniform]
    L = x0.numel()
    for name, rows in (("rows_masked", rows_masked), ("rows_uniform", rows_uniform)):
        if not rows or any(r.numel() != L for r in rows):
            raise ValueError(f"{name}: expected one or more id rows of length {L}")
    if len(rows_masked) != len(rows_uniform):
        raise ValueError(f"rows_uniform: expected {len(rows_masked)} rows (one per masked row), "
                         f"got {len(rows_uniform)}")
    n = len(rows_masked)
    labels = [f"row {i + 1}" for i in range(n)] if labels is None else list(labels)
    if len(labels) != n:
        raise ValueError(f"labels: expected {n} labels, got {len(labels)}")
    shown = [not h for h in _story_hidden(tok, x0.tolist())]
    x0_pieces = _printable(token_pieces(tok, x0))
    cells = []                                              # per row: (masked cell, uniform cell)
    for xm, xu in zip(rows_masked, rows_uniform):
        slots_m, lines_m = _layout(x0_pieces, shown, width_chars)
        looks_m = [None if int(xm[k]) == tok.mask_id else (TEXT_DARK, False) for k, _, _, _ in slots_m]
        slots_u, lines_u = _layout(_printable(token_pieces(tok, xu)), shown, width_chars)
        looks_u = [(REPLACED_RED, True) if int(xu[k]) != int(x0[k]) else (TEXT_DARK, False) for k, _, _, _ in slots_u]
        cells.append(((slots_m, looks_m, lines_m, int((xm[torch.tensor(shown)] == tok.mask_id).sum())),
                      (slots_u, looks_u, lines_u, int((xu != x0)[torch.tensor(shown)].sum()))))
    plt = _plt()
    col_in, gap_in, title_in = 5.6, 0.4, 0.32
    char_pt = col_in * 72 / (width_chars + _OVERHANG + 2)
    line_in = 2.0 * char_pt / 72
    heights = [(max(c[0][2], c[1][2]) + 0.6) * line_in + title_in for c in cells]
    fig_w, fig_h = 2 * col_in + 3 * gap_in, sum(heights) + 0.3
    fig = plt.figure(figsize=(fig_w, fig_h))
    fontsize = char_pt / 0.61
    top = fig_h - 0.15
    n_shown = sum(shown)
    for label, (cm, cu), h in zip(labels, cells, heights):
        top -= h
        for j, (slots, looks, lines, count) in enumerate((cm, cu)):
            ax = fig.add_axes((((gap_in + j * (col_in + gap_in)) / fig_w), top / fig_h,
                               col_in / fig_w, (h - title_in) / fig_h))
            ax.set_xlim(-1, width_chars + _OVERHANG + 1)
            ax.set_ylim(max(cm[2], cu[2]) - 0.4, -0.6)
            ax.axis("off")
            _text_block(ax, 0.0, slots, looks, fontsize)
            what = "masked" if j == 0 else "replaced by a random token (red)"
            ax.set_title(f"{label}, {'masking' if j == 0 else 'uniform noise'}: {count} of {n_shown} {what}",
                         fontsize=9, loc="left", color="#57606a")
    return fig
