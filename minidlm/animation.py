"""The denoising animation that plays anywhere (lessons 00 and 07): a whole ``Trace`` as a
self-contained HTML/JavaScript animation (matplotlib's ``to_jshtml``), for nbviewer, exported HTML,
CI and Colab without widgets. It fetches nothing: the player's icon font is replaced by Unicode
glyphs, so it also plays offline. ``viz`` re-exports it.
"""
from __future__ import annotations

import re

import torch

from .viz import MASK_GREY, TEXT_DARK, _check_trace, _plt, _row_layout, reveal_rgb


def trace_animation_jshtml(tok, trace, row: int = 0, interval: int = 350, width_chars: int = 60,
                           max_frames: int = 80, dpi: int = 72) -> str:
    """The whole trace as a self-contained HTML/JavaScript animation (matplotlib's
    ``FuncAnimation(...).to_jshtml()``): it plays wherever HTML does, with no kernel and no widget
    manager (nbviewer, exported HTML, CI). Same conventions as ``trace_step_html``. Returns a str.
    A revising trace (lesson 15) is laid out frame by frame (``viz_revisions``)."""
    if getattr(trace, "revises", False):
        from .viz_revisions import revision_animation_jshtml
        return revision_animation_jshtml(tok, trace, row, interval, width_chars, max_frames, dpi)
    _check_trace(trace, row)
    plt = _plt()
    from matplotlib.patches import Rectangle

    total = trace.steps
    _, pieces, hidden, reveal = _row_layout(tok, trace, row)
    # lay out every slot once, on the final text, so nothing moves while the animation plays
    slots, col, line = [], 0, 0
    for k, (piece, hide, r) in enumerate(zip(pieces, hidden, reveal)):
        if hide and r <= 0:                        # given specials ([BOS]) are never shown
            continue
        lead = 1 if piece.startswith(" ") else 0
        word = piece[lead:] or "_"
        if col + lead + len(word) > width_chars and col > 0:
            col, line, lead = 0, line + 1, 0
        slots.append((k, col + lead, line, word))
        col += lead + len(word)
    n_lines = line + 1
    frames = list(range(total + 1))
    if len(frames) > max_frames:                   # keep the first and last step
        keep = torch.linspace(0, total, max_frames).round().long().unique().tolist()
        frames = keep
    fig_w = 9.0
    char_pt = fig_w * 72 / (width_chars + 2)       # points per character cell (the axes fill the figure)
    line_in = 2.0 * char_pt / 72                   # inches per line of text
    fig = plt.figure(figsize=(fig_w, (n_lines + 1.6) * line_in))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1, width_chars + 1)
    ax.set_ylim(n_lines + 0.1, -1.5)
    ax.axis("off")
    fontsize = char_pt / 0.61                      # DejaVu Sans Mono advance ~0.6 em
    texts, boxes = [], []
    for k, x, y, word in slots:
        texts.append(ax.text(x, y + 0.3, word, family="monospace", fontsize=fontsize, va="baseline"))
        box = Rectangle((x, y - 0.42), len(word) - 0.2, 0.84, color=MASK_GREY)   # a gap between slots
        ax.add_patch(box)
        boxes.append(box)
    head = ax.text(0, -0.95, "", fontsize=11, color="#57606a", va="center")

    def draw(step):
        state = trace.states[step][row].tolist()
        for (k, _, _, _), txt, box in zip(slots, texts, boxes):
            masked = state[k] == tok.mask_id
            box.set_visible(masked)
            txt.set_visible(not masked and not hidden[k])
            if not masked:
                txt.set_color(reveal_rgb(reveal[k], total) if reveal[k] > 0 else TEXT_DARK)
                txt.set_fontweight("bold" if reveal[k] == step and step > 0 else "normal")
        n_masked = sum(s == tok.mask_id for s in state)
        head.set_text(f"step {step} / {total}  ·  {n_masked} masked")
        return texts + boxes + [head]

    return animation_html(fig, draw, frames, interval)


def animation_html(fig, draw, frames, interval: int) -> str:
    """``FuncAnimation(fig, draw, frames)`` as self-contained HTML (played once, offline controls); closes fig."""
    from matplotlib import animation
    plt = _plt()
    anim = animation.FuncAnimation(fig, draw, frames=frames, interval=interval, blit=False)
    try:
        out = anim.to_jshtml(default_mode="once")
    finally:
        plt.close(fig)
    return _offline_controls(out)


# matplotlib's controls are Font Awesome icons (<i class="fa fa-play">) from a stylesheet on a CDN:
# offline the buttons would be blank. Plain Unicode glyphs need no font download (U+FE0E asks for
# the text, not the emoji, form of the triangles).
_ICON_GLYPHS = {
    "fa-minus": "\u2212",                 # slower
    "fa-fast-backward": "\u21e4",         # first frame
    "fa-step-backward": "\u25c1",         # previous frame
    "fa-play fa-flip-horizontal": "\u25c0\ufe0e",   # play backwards
    "fa-pause": "\u275a\u275a",           # pause
    "fa-play": "\u25b6\ufe0e",            # play
    "fa-step-forward": "\u25b7",          # next frame
    "fa-fast-forward": "\u21e5",          # last frame
    "fa-plus": "+",                       # faster
}


def _offline_controls(html: str) -> str:
    """``to_jshtml`` output made self-contained: the Font Awesome <link> removed and every icon
    replaced by a Unicode glyph (an unknown icon by its name, so no button is ever blank)."""
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)

    def glyph(m):
        classes = " ".join(c for c in m.group(1).split() if c != "fa")
        return _ICON_GLYPHS.get(classes, classes.removeprefix("fa-").replace("-", " ") or "?")

    return re.sub(r'<i class="([^"]*)"\s*>\s*</i>', glyph, html)
