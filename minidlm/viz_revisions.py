"""Pictures of samplers that revise (lesson 15): uniform-state diffusion and ReMDM's remasking.

A masked sampler commits a token once and never touches it again, so lesson 07's renderers lay
out the FINAL text and only decide, per step, which slots are still grey. A revising trace
(``trace.revises``: ``uniform.uniform_generate``, ``remask.remdm_generate``) may change any token
at any step, so every picture here reads the tokens of ``trace.states[k]`` itself. The
vocabulary of a step k (1-based), for one position:

  changed    states[k] != states[k - 1];
  revised    a token now stands where a DIFFERENT word stood before: it replaced a word directly
             (uniform) or came back after a [MASK] as another word than the one remasked (ReMDM);
  remasked   a word went back to [MASK] (ReMDM only).

``revision_events`` computes these once; the renderers only draw them:

  ``revision_step_html``       one step as the player's HTML card (``viz.trace_step_html`` calls
                               it for a revising trace);
  ``revision_frames_ansi``     the terminal frames (``viz.trace_frames_ansi``);
  ``revision_frames_figure``   a few steps as one still figure (``viz_text_frames.trace_frames_figure``);
  ``revision_animation_jshtml`` the offline animation (``animation.trace_animation_jshtml``);
  ``revision_map_figure``      position x step map of what happened, revisions per step below.
"""
from __future__ import annotations

import html as _html
from dataclasses import dataclass

import torch

from .viz_corruption import corruption_rows_figure  # noqa: F401  (re-exported: lesson 15 calls it from here)
from .viz import (_CARD, MASK_GREY, TEXT_DARK, _check_step, _check_trace, _plt, _span_mask,
                  render_tokens_ansi, reveal_css, reveal_rgb, token_pieces)

REVISED_RED = "#d1242f"    # a revised token's outline; a replaced token in the corruption figure
REMASK_ORANGE = "#d4850f"  # a word sent back to [MASK]


@dataclass
class RevisionEvents:
    """What happened to one row of a trace, step by step (all CPU tensors, steps 1-based):

    states:   (T + 1, L) token ids, states[k] after step k;
    changed:  (T + 1, L) bool, True where step k changed the token (row 0 all False);
    revised:  (T + 1, L) bool, a token that replaced a different, earlier word;
    remasked: (T + 1, L) bool, a word sent back to [MASK];
    was:      (T + 1, L) int, for a revised token the word it replaced (-1 elsewhere);
    last:     (T + 1, L) int, the step of each position's last change up to k (0: never)."""
    states: torch.Tensor
    changed: torch.Tensor
    revised: torch.Tensor
    remasked: torch.Tensor
    was: torch.Tensor
    last: torch.Tensor

    def per_step(self, name: str) -> list[int]:
        """How many positions were ``name`` ("changed", "revised", "remasked") at steps 1..T."""
        return getattr(self, name)[1:].sum(1).tolist()


def revision_events(trace, row: int = 0, mask_id: int | None = None) -> RevisionEvents:
    """The changes, revisions and remaskings of row ``row`` of a trace (lesson 15). ``mask_id``
    defaults to the trace's own (-1 for uniform-state traces: no [MASK] ever)."""
    _check_trace(trace, row)
    mask_id = getattr(trace, "_mask_id", -1) if mask_id is None else mask_id
    S = torch.stack([s[row].long().cpu() for s in trace.states])               # (T + 1, L)
    is_mask = S == mask_id
    changed = torch.zeros_like(S, dtype=torch.bool)
    changed[1:] = S[1:] != S[:-1]
    remasked = torch.zeros_like(changed)
    remasked[1:] = changed[1:] & is_mask[1:] & ~is_mask[:-1]
    shown = torch.where(is_mask[0], torch.full_like(S[0], -1), S[0])           # last word seen, (L,)
    revised, was = torch.zeros_like(changed), torch.full_like(S, -1)
    last = torch.zeros_like(S)
    for k in range(1, S.shape[0]):
        rev = changed[k] & ~is_mask[k] & (shown >= 0) & (shown != S[k])
        revised[k], was[k] = rev, torch.where(rev, shown, was[k])
        shown = torch.where(is_mask[k], shown, S[k])
        last[k] = torch.where(changed[k], torch.full_like(last[k], k), last[k - 1])
    return RevisionEvents(S, changed, revised, remasked, was, last)


def count_revisions(trace, mask_id: int | None = None) -> dict:
    """Totals over every row of a trace: {"revised": ..., "remasked": ...} (the player's info line)."""
    out = {"revised": 0, "remasked": 0}
    for b in range(trace.final.shape[0]):
        ev = revision_events(trace, b, mask_id)
        out["revised"] += int(ev.revised.sum())
        out["remasked"] += int(ev.remasked.sum())
    return out


def _frame(tok, ev: RevisionEvents, step: int, skip_special: bool = True):
    """One step of a row as a list of slots (position, piece, look): look is "mask", "remask" (a
    word sent back to [MASK] at this step), or (last change, changed now, revised now, old word).
    A masked slot's piece is the final word there (the box is as wide as it); special tokens
    ([BOS], [EOS], [PAD]) are skipped once visible, as the masked renderers hide them. old: the
    word the token replaced at its last change ("" if that change was not a revision)."""
    state = ev.states[step].tolist()
    pieces = token_pieces(tok, state)
    final = token_pieces(tok, ev.states[-1])
    specials = getattr(tok, "special_ids", set())
    out = []
    for k, (tid, piece) in enumerate(zip(state, pieces)):
        if tid == tok.mask_id:
            out.append((k, final[k] if final[k] and ev.states[-1, k] != tok.mask_id else piece,
                        "remask" if step > 0 and bool(ev.remasked[step, k]) else "mask"))
            continue
        if skip_special and tid in specials:
            continue
        last = int(ev.last[step, k])
        old = ""
        if bool(ev.revised[last, k]):
            o = token_pieces(tok, [int(ev.was[last, k])])[0]
            old = o.strip() or repr(o)
        out.append((k, piece, (last, step > 0 and last == step, step > 0 and bool(ev.revised[step, k]), old)))
    return out


# ----------------------------------------------------------------------------- HTML
def _span(word: str, colour: str | None, bold: bool, revised: bool, title: str) -> str:
    style = f"color: {colour}" if colour else ""
    if bold:
        style += "; font-weight: 700; text-decoration: underline; text-underline-offset: 0.18em"
    cls = "mdlm-tok"
    if revised:
        cls += " mdlm-revised"
        style += f"; outline: 2px dashed {REVISED_RED}; outline-offset: 1px; border-radius: 0.2em"
    t = f' title="{_html.escape(title)}"' if title else ""
    return f'<span class="{cls}" style="{style}"{t}>{_html.escape(word)}</span>'


def _legend(total: int, with_masks: bool) -> str:
    stops = ", ".join(reveal_css(s, 5) for s in range(1, 6))
    masks = (f'<span style="background: {MASK_GREY}; border-radius: 0.25em">&#8199;&#8199;&#8199;</span>'
             ' = [MASK]; ') if with_masks else ""
    return ('<div class="mdlm-legend" style="font-size: 0.55em; color: #57606a; margin-top: 0.6em">'
            '<span style="display: inline-block; width: 8em; height: 0.7em; vertical-align: middle; '
            f'border-radius: 0.3em; background: linear-gradient(to right, {stops})"></span>'
            f' colour = the step of the token\'s last change (step 1 &#8594; step {total}; dark: unchanged '
            f'since the start); {masks}<u><b>underlined</b></u> = changed at this step; '
            f'<span style="outline: 2px dashed {REVISED_RED}">revised</span> = replaced another word '
            'at this step (hover: the old word)</div>')


def revision_step_html(tok, trace, step: int, row: int = 0, big: bool = False, label: str = "") -> str:
    """Step ``step`` of a revising trace as the player's HTML card (lesson 15; same classes as
    ``viz.trace_step_html``): the tokens of ``states[step]``; [MASK] as grey boxes (class
    ``mdlm-mask``, ReMDM); each token coloured by the step of its last change; the tokens changed
    at this step underlined; a token that replaced a different word at this step outlined
    (class ``mdlm-revised``, title "was: <old word>"); a word sent back to [MASK] at this step
    is a box with an orange outline (class ``mdlm-remasked``). The header counts the tokens
    changed, revised and remasked at this step and the slots still masked."""
    _check_trace(trace, row)
    step = _check_step(trace, step)
    total = trace.steps
    ev = revision_events(trace, row, tok.mask_id)
    parts = []
    for _k, piece, look in _frame(tok, ev, step):
        lead = " " if piece.startswith(" ") else ""
        word = piece[len(lead):]
        if look in ("mask", "remask"):
            box = _span_mask(word)
            if look == "remask":
                box = box.replace('class="mdlm-mask" style="', 'class="mdlm-mask mdlm-remasked" title="remasked at '
                                  f'this step" style="outline: 2px solid {REMASK_ORANGE}; ', 1)
            parts.append(lead + box)
            continue
        last, now, rev, old = look
        title = f"last changed at step {last}" if last > 0 else ""
        if old:
            title = f"was: {old}" if rev else f"revised at step {last}, was: {old}"
        parts.append(lead + _span(word, reveal_css(last, total) if last > 0 else None, now, rev, title))
    n_masked = int((ev.states[step] == tok.mask_id).sum())
    with_masks = bool((ev.states == tok.mask_id).any())
    counts = [f"{int(ev.changed[step].sum())} changed at this step",
              f"{int(ev.revised[step].sum())} revised"]
    if with_masks:
        counts.append(f"{int(ev.remasked[step].sum())} remasked")
    counts.append(f"{n_masked} masked")
    counter = (f'<span class="mdlm-step" style="font-weight: 700">step {step} / {total}</span> &middot; '
               + " &middot; ".join(counts))
    if label:
        counter = f"{_html.escape(label)} &middot; " + counter
    size = "30px" if big else "17px"
    return (f'<div class="mdlm-card" style="{_CARD}; font-size: {size}">'
            f'<div class="mdlm-header" style="font-size: 0.6em; color: #57606a; margin-bottom: 0.4em">{counter}</div>'
            f'<div class="mdlm-text" style="line-height: 1.75; white-space: pre-wrap">{"".join(parts)}</div>'
            f'{_legend(total, with_masks)}</div>')


# ----------------------------------------------------------------------------- terminal
def revision_frames_ansi(tok, trace, row: int = 0, colour: bool = True, skip_special: bool = True) -> list[str]:
    """Every state of a revising trace as terminal text (``viz.trace_frames_ansi``'s twin): the
    tokens of each state, coloured by the step of their last change; [MASK] as blocks."""
    _check_trace(trace, row)
    ev = revision_events(trace, row, tok.mask_id)
    frames = []
    for step in range(trace.steps + 1):
        slots = _frame(tok, ev, step, skip_special)
        pieces = [p for _, p, _ in slots]
        masked = [look in ("mask", "remask") for _, _, look in slots]
        last = [0 if m else look[0] for m, (_, _, look) in zip(masked, slots)]
        frames.append(render_tokens_ansi(pieces, masked, last, trace.steps, colour))
    return frames


# ----------------------------------------------------------------------------- still frames, animation
def _draw_frame(ax, slots_xy, looks, fontsize: float, total: int, y0: float = 0.0) -> list:
    """Draw one laid-out frame; returns the artists. looks[i] as in ``_frame``."""
    from matplotlib.patches import Rectangle

    artists = []
    for (_, x, y, word), look in zip(slots_xy, looks):
        if look in ("mask", "remask"):
            kw = dict(facecolor=MASK_GREY, lw=1.6 if look == "remask" else 0,
                      edgecolor=REMASK_ORANGE if look == "remask" else MASK_GREY)
            artists.append(ax.add_patch(Rectangle((x, y0 + y - 0.42), len(word) - 0.2, 0.84, **kw)))
            continue
        last, now, rev, _ = look
        artists.append(ax.text(x, y0 + y + 0.3, word, family="monospace", fontsize=fontsize, va="baseline",
                               color=reveal_rgb(last, total) if last > 0 else TEXT_DARK,
                               fontweight="bold" if now else "normal"))
        if rev:
            artists.append(ax.add_patch(Rectangle((x - 0.15, y0 + y - 0.5), len(word) + 0.1, 1.0, fill=False,
                                                  edgecolor=REVISED_RED, lw=1.2, linestyle="--")))
    return artists


def _frame_header(ev: RevisionEvents, step: int, total: int, mask_id: int) -> str:
    head = (f"step {step} / {total}:  {int(ev.changed[step].sum())} changed, "
            f"{int(ev.revised[step].sum())} revised")
    if bool((ev.states == mask_id).any()):
        head += f", {int(ev.remasked[step].sum())} remasked, {int((ev.states[step] == mask_id).sum())} masked"
    return head


def _laid_out(tok, ev, step: int, width_chars: int):
    from .viz_text_frames import _layout

    slots = _frame(tok, ev, step)
    xy, n_lines = _layout([p for _, p, _ in slots], [True] * len(slots), width_chars)
    return xy, [look for _, _, look in slots], n_lines


def revision_frames_figure(tok, trace, steps=None, row: int = 0, width_chars: int = 64, title: str = ""):
    """A few steps of a revising trace one under the other (``viz_text_frames.trace_frames_figure``
    for lesson 15): each frame laid out from its own tokens; colour = step of the last change,
    bold = changed at the step shown, red dashed box = revised there, orange box = remasked there.
    Returns the Figure."""
    from .viz_text_frames import _canvas, default_frames

    _check_trace(trace, row)
    total = trace.steps
    steps = default_frames(total) if steps is None else [int(s) for s in steps]
    if not steps or any(not 0 <= s <= total for s in steps):
        raise ValueError(f"steps: expected step numbers in [0, {total}], got {steps!r}")
    ev = revision_events(trace, row, tok.mask_id)
    frames = [_laid_out(tok, ev, s, width_chars) for s in steps]
    head = 1.2 if title else 0.0
    per_frame = max(n for _, _, n in frames) + 1.5
    fig, ax, fontsize = _canvas(head + per_frame * len(steps) + 0.8, width_chars)
    if title:
        ax.text(0, 0.1, title, fontsize=fontsize * 0.8, fontweight="bold", color=TEXT_DARK, va="center")
    for f, (step, (xy, looks, _)) in enumerate(zip(steps, frames)):
        y0 = head + f * per_frame
        ax.text(0, y0, _frame_header(ev, step, total, tok.mask_id), fontsize=fontsize * 0.62, color="#57606a",
                va="center")
        _draw_frame(ax, xy, looks, fontsize, total, y0 + 1.0)
    ax.text(0, head + per_frame * len(steps) - 0.2,
            "colour = the step of a word's last change (blue early, red late); bold = changed at the step shown; "
            "dashed red = revised (replaced another word)", fontsize=fontsize * 0.55, color="#57606a", va="center")
    return fig


def revision_animation_jshtml(tok, trace, row: int = 0, interval: int = 350, width_chars: int = 60,
                              max_frames: int = 80, dpi: int = 72) -> str:
    """A revising trace as the offline animation (``animation.trace_animation_jshtml``'s twin):
    every frame is laid out from its own tokens, so a word may change length as it is revised."""
    from .animation import animation_html

    _check_trace(trace, row)
    plt = _plt()
    total = trace.steps
    ev = revision_events(trace, row, tok.mask_id)
    frames = list(range(total + 1))
    if len(frames) > max_frames:
        frames = torch.linspace(0, total, max_frames).round().long().unique().tolist()
    laid = {s: _laid_out(tok, ev, s, width_chars) for s in frames}
    n_lines = max(n for _, _, n in laid.values())
    fig_w = 9.0
    char_pt = fig_w * 72 / (width_chars + 2)
    line_in = 2.0 * char_pt / 72
    fig = plt.figure(figsize=(fig_w, (n_lines + 1.6) * line_in), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1, width_chars + 1)
    ax.set_ylim(n_lines + 0.1, -1.5)
    ax.axis("off")
    fontsize = char_pt / 0.61
    head = ax.text(0, -0.95, "", fontsize=11, color="#57606a", va="center")
    drawn: list = []

    def draw(step):
        while drawn:
            drawn.pop().remove()
        xy, looks, _ = laid[step]
        drawn.extend(_draw_frame(ax, xy, looks, fontsize, total))
        head.set_text(_frame_header(ev, step, total, tok.mask_id).replace(":", "  ·", 1))
        return drawn + [head]

    return animation_html(fig, draw, frames, interval)


# ----------------------------------------------------------------------------- lesson 15's figures
_MAP_COLOURS = (("masked", MASK_GREY), ("kept", "#f3f4f6"), ("new", "#2f5d9e"), ("revised", REVISED_RED),
                ("remasked", REMASK_ORANGE))


def revision_map_figure(trace, row: int = 0, mask_id: int | None = None, title: str | None = None):
    """Lesson 15: what happened at each position (rows) and step (columns) of a sampling trace:
    masked (still [MASK]), kept, new (a [MASK] filled with a word, or the same word back), revised
    (a different word than before), remasked (sent back to [MASK]); below it, the number of
    revisions (and remaskings) per step. Works for any trace: a masked sampler shows no revisions.
    ``mask_id`` defaults to the trace's. Returns the Figure (the map is ``fig.axes[0]``)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    ev = revision_events(trace, row, mask_id)
    mask_id = getattr(trace, "_mask_id", -1) if mask_id is None else mask_id
    S = ev.states
    cat = torch.ones_like(S)                                                   # kept
    cat[S == mask_id] = 0
    cat[ev.changed & (S != mask_id)] = 2
    cat[ev.revised] = 3
    cat[ev.remasked] = 4
    img = cat[1:].T                                                            # (L, T)
    T, L = S.shape[0] - 1, S.shape[1]
    plt = _plt()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    ax.imshow(img.numpy(), aspect="auto", interpolation="nearest", vmin=0, vmax=len(_MAP_COLOURS) - 1,
              cmap=ListedColormap([c for _, c in _MAP_COLOURS]), extent=(0.5, T + 0.5, L - 0.5, -0.5))
    ax.set_ylabel("position")
    ax.set_title(title or "what each step did to each position")
    present = set(img.unique().tolist())
    ax.legend(handles=[Patch(facecolor=c, edgecolor="#8c959f", label=n) for i, (n, c) in enumerate(_MAP_COLOURS)
                       if i in present],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    steps = list(range(1, T + 1))
    rev, rem = ev.per_step("revised"), ev.per_step("remasked")
    with_masks = bool((S == mask_id).any())
    w = 0.4 if with_masks else 0.8
    bx.bar([s - w / 2 if with_masks else s for s in steps], rev, width=w, color=REVISED_RED,
           label=f"revised ({sum(rev)} in all)")
    if with_masks:
        bx.bar([s + w / 2 for s in steps], rem, width=w, color=REMASK_ORANGE, label=f"remasked ({sum(rem)} in all)")
    bx.set_xlabel("step")
    bx.set_ylabel("tokens")
    bx.set_xlim(0.5, T + 0.5)
    bx.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
