"""Text with blanks as still pictures (lessons 00 and 02): the static twins of the denoising player
and of the t slider, for places without a live kernel (nbviewer, exported HTML, PDF).

``trace_frames_figure`` draws a few steps of a sampling ``Trace`` one under the other (lesson 00);
``masked_rows_figure`` draws one clean text as it looks after masking, once per row (lesson 02).
Both follow the player's conventions: a masked slot is a grey box as wide as the word it hides,
a revealed token is coloured by the step that revealed it (``viz.reveal_rgb``: blue early, red
late), the tokens revealed at the step shown are bold, and [BOS] and the [EOS] padding after the
story's end are hidden once revealed.
"""
from __future__ import annotations

import torch

from .viz import MASK_GREY, TEXT_DARK, _check_trace, _plt, _row_layout, reveal_rgb, token_pieces

_FIG_W = 9.0          # inches; the text block fills the width
_OVERHANG = 3         # character cells a piece glued to the previous word may run past the width


def _layout(pieces: list[str], shown: list[bool], width_chars: int):
    """Word-wrap the shown pieces into lines of ``width_chars`` character cells. Returns the slots
    (index, column, line, word) and the number of lines. A leading space belongs to its token."""
    slots, col, line = [], 0, 0
    for k, (piece, show) in enumerate(zip(pieces, shown)):
        if not show:
            continue
        lead = 1 if piece.startswith(" ") else 0
        word = piece[lead:] or "_"
        room = width_chars if lead else width_chars + _OVERHANG     # "." or "," stays on its line
        if col + lead + len(word) > room and col > 0:
            col, line, lead = 0, line + 1, 0
        slots.append((k, col + lead, line, word))
        col += lead + len(word)
    return slots, line + 1


def _text_block(ax, y0: float, slots, looks, fontsize: float) -> None:
    """Draw one laid-out text at line offset ``y0``. looks[i]: None for a grey [MASK] box, "" to
    draw nothing (hidden), else (colour, bold) for a visible token."""
    from matplotlib.patches import Rectangle

    for (_, x, y, word), look in zip(slots, looks):
        if look is None:
            ax.add_patch(Rectangle((x, y0 + y - 0.42), len(word) - 0.2, 0.84, color=MASK_GREY, lw=0))
        elif look:
            colour, bold = look
            ax.text(x, y0 + y + 0.3, word, family="monospace", fontsize=fontsize, va="baseline",
                    color=colour, fontweight="bold" if bold else "normal")


def _canvas(n_rows: float, width_chars: int):
    """A figure whose axes fill it, in character cells (x) and text lines (y, downwards)."""
    plt = _plt()
    char_pt = _FIG_W * 72 / (width_chars + _OVERHANG + 2)   # points per character cell
    line_in = 2.0 * char_pt / 72                         # inches per line of text
    fig = plt.figure(figsize=(_FIG_W, n_rows * line_in))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1, width_chars + _OVERHANG + 1)
    ax.set_ylim(n_rows - 0.6, -0.6)
    ax.axis("off")
    return fig, ax, char_pt / 0.61                       # DejaVu Sans Mono: ~0.6 em per character


def default_frames(total: int) -> list[int]:
    """The steps ``trace_frames_figure`` shows by default: the start, the first step, a quarter,
    half and three quarters of the way, and the end (fewer when the trace is short)."""
    picks = [0, 1, round(total / 4), round(total / 2), round(3 * total / 4), total]
    return sorted({min(max(s, 0), total) for s in picks})


def trace_frames_figure(tok, trace, steps=None, row: int = 0, width_chars: int = 64, title: str = ""):
    """Lesson 00: a few steps of a sampling trace, one under the other, as one still figure (what
    the denoising player shows at those steps). steps: the steps to draw (default
    ``default_frames(trace.steps)``). Each frame has a header "step k / T: n masked". Returns the
    Figure. A revising trace (lesson 15) is drawn by ``viz_revisions.revision_frames_figure``."""
    if getattr(trace, "revises", False):
        from .viz_revisions import revision_frames_figure
        return revision_frames_figure(tok, trace, steps, row, width_chars, title)
    _check_trace(trace, row)
    total = trace.steps
    steps = default_frames(total) if steps is None else [int(s) for s in steps]
    if not steps or any(not 0 <= s <= total for s in steps):
        raise ValueError(f"steps: expected step numbers in [0, {total}], got {steps!r}")
    _, pieces, hidden, reveal = _row_layout(tok, trace, row)
    shown = [not (hide and r <= 0) for hide, r in zip(hidden, reveal)]    # given specials: never
    slots, n_lines = _layout(pieces, shown, width_chars)
    head = 1.2 if title else 0.0
    per_frame = n_lines + 1.5                                             # header + text + gap
    fig, ax, fontsize = _canvas(head + per_frame * len(steps) + 0.8, width_chars)
    if title:
        ax.text(0, 0.1, title, fontsize=fontsize * 0.8, fontweight="bold", color=TEXT_DARK, va="center")
    for f, step in enumerate(steps):
        y0 = head + f * per_frame
        state = trace.states[step][row].tolist()
        n_masked = sum(s == tok.mask_id for s in state)
        new = [k for k, (r, s) in enumerate(zip(reveal, state)) if r == step and step > 0 and s != tok.mask_id]
        n_pad = sum(hidden[k] for k in new)
        header = f"step {step} / {total}:  {n_masked} masked, {len(new)} revealed at this step"
        if n_pad:
            header += f" ({n_pad} of them [EOS] padding, hidden)"
        ax.text(0, y0, header, fontsize=fontsize * 0.62, color="#57606a", va="center")
        looks = []
        for k, _, _, _ in slots:
            if state[k] == tok.mask_id:
                looks.append(None)
            elif hidden[k]:
                looks.append("")
            else:
                colour = reveal_rgb(reveal[k], total) if reveal[k] > 0 else TEXT_DARK
                looks.append((colour, reveal[k] == step and step > 0))
        _text_block(ax, y0 + 1.0, slots, looks, fontsize)
    ax.text(0, head + per_frame * len(steps) - 0.2,
            "colour = the step that revealed a word (blue early, red late); grey box = still [MASK]; "
            "bold = revealed at the step shown", fontsize=fontsize * 0.55, color="#57606a", va="center")
    return fig


def masked_rows_figure(tok, x0, rows, labels=None, width_chars: int = 64):
    """Lesson 02: one clean text ``x0`` ((L,) or (1, L) ids) shown once per masked version in
    ``rows`` (each (L,) or (1, L) ids, [MASK] where masked): kept tokens dark, masked ones grey
    boxes as wide as the hidden word. labels: one header per row (default: the number masked).
    Returns the Figure."""
    x0 = torch.as_tensor(x0).reshape(-1)
    rows = [torch.as_tensor(r).reshape(-1) for r in rows]
    if not rows or any(r.numel() != x0.numel() for r in rows):
        raise ValueError(f"rows: expected one or more id rows of length {x0.numel()}")
    if labels is None:
        labels = [f"{int((r == tok.mask_id).sum())} of {x0.numel()} tokens masked" for r in rows]
    if len(labels) != len(rows):
        raise ValueError(f"labels: expected {len(rows)} labels, got {len(labels)}")
    pieces = token_pieces(tok, x0)
    slots, n_lines = _layout(pieces, [True] * len(pieces), width_chars)
    per_row = n_lines + 1.5
    fig, ax, fontsize = _canvas(per_row * len(rows), width_chars)
    for i, (xt, label) in enumerate(zip(rows, labels)):
        y0 = i * per_row
        ax.text(0, y0, label, fontsize=fontsize * 0.62, color="#57606a", va="center")
        looks = [None if int(xt[k]) == tok.mask_id else (TEXT_DARK, False) for k, _, _, _ in slots]
        _text_block(ax, y0 + 1.0, slots, looks, fontsize)
    return fig
