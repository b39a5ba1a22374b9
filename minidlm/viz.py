"""Pictures of what diffusion language models do (every lesson, first in 00, 02, 07 and 09).

Record, then render. A sampler records a ``Trace`` (the state after every step, the step at which
each position was revealed, the confidences); the functions here draw one step of it, or a whole
schedule, or an attention mask, and nothing else: no sampling, no hidden state. The widgets
(widgets.py) are thin shells over them, and every widget callback is a plain method, so the tests can
call it at the slider's extremes.

  terminal:   ``render_tokens_ansi``, ``trace_frames_ansi``           (``python -m minidlm demo``)
  HTML:       ``trace_step_html``, ``masked_text_html``                (lessons 00, 02, 07)
  figures:    ``confidence_heatmap``, ``schedule_curves``,
              ``attention_mask_heatmap``, ``esolm_mask_panels``        (lessons 02, 07, 09)
              ``training_curves``, ``valid_vs_seconds``                (lesson 06)
  anywhere:   ``trace_animation_jshtml`` (a self-contained HTML animation, no URL fetched:
              nbviewer, exported HTML, Colab without widgets, offline; in animation.py)
  widgets:    ``denoising_player``, ``forward_slider``, ``mask_explorer`` (in widgets.py)

Both re-exported here, so ``from minidlm.viz import ...`` reaches every picture.
"""
from __future__ import annotations

import colorsys
import html as _html
import io

import torch

# 256-colour ANSI codes from cool (revealed early) to warm (revealed late)
PALETTE = (27, 33, 39, 45, 51, 50, 48, 82, 118, 154, 190, 226, 220, 214, 208, 202, 196)
MASK_GLYPH = "▒"


def reveal_colour(step: int, total_steps: int) -> int:
    """The palette colour for a token revealed at ``step`` of ``total_steps`` (1-based)."""
    if total_steps <= 1:
        return PALETTE[0]
    k = round((step - 1) / (total_steps - 1) * (len(PALETTE) - 1))
    return PALETTE[max(0, min(len(PALETTE) - 1, k))]


def render_tokens_ansi(pieces: list[str], state_is_mask: list[bool], reveal_step: list[int],
                       total_steps: int, colour: bool = True) -> str:
    """One state of a trace as text: masked slots as blocks as wide as the hidden word (so the
    layout does not jump), revealed tokens coloured by the step that revealed them, given tokens
    (prompt) plain. ``pieces`` are the final tokens' strings."""
    out = []
    for piece, masked, step in zip(pieces, state_is_mask, reveal_step):
        lead = " " if piece.startswith(" ") else ""
        word = piece[len(lead):]
        if masked:
            glyphs = MASK_GLYPH * max(1, len(word))
            out.append(lead + (f"\033[38;5;240m{glyphs}\033[0m" if colour else glyphs))
        elif step > 0 and colour:
            out.append(f"{lead}\033[38;5;{reveal_colour(step, total_steps)}m{word}\033[0m")
        else:
            out.append(piece)
    return "".join(out)


def trace_frames_ansi(tok, trace, row: int = 0, colour: bool = True, skip_special: bool = True) -> list[str]:
    """Every state of a trace (row ``row``) rendered with ``render_tokens_ansi``. Special tokens
    ([BOS], [EOS] padding) are hidden by default once revealed. A revising trace (lesson 15) is
    drawn from each state's own tokens (``viz_revisions.revision_frames_ansi``)."""
    if getattr(trace, "revises", False):
        from .viz_revisions import revision_frames_ansi
        return revision_frames_ansi(tok, trace, row, colour, skip_special)
    ids = trace.final[row].tolist()
    pieces = token_pieces(tok, ids)
    specials = _story_hidden(tok, ids)          # [BOS], and everything from the story's [EOS] on
    total = trace.steps
    reveal = trace.reveal_step[row].tolist()
    frames = []
    for state in trace.states:
        is_mask = (state[row] == tok.mask_id).tolist()
        keep = [m or not (skip_special and s) for m, s in zip(is_mask, specials)]
        frames.append(render_tokens_ansi([p for p, k in zip(pieces, keep) if k],
                                         [m for m, k in zip(is_mask, keep) if k],
                                         [r for r, k in zip(reveal, keep) if k], total, colour))
    return frames


# =============================================================================== shared helpers
MASK_GREY = "#c9ccd1"     # a masked slot (HTML boxes and figures alike)
TEXT_DARK = "#1f2328"     # given tokens (prompt) and the card's text


def reveal_rgb(step: int, total_steps: int) -> tuple[float, float, float]:
    """RGB in [0, 1] for a token revealed at ``step`` (1-based) of ``total_steps``: blue for the
    first steps through green and orange to red for the last (the ANSI palette's order)."""
    frac = 0.0 if total_steps <= 1 else min(1.0, max(0.0, (step - 1) / (total_steps - 1)))
    hue = (220 - 220 * frac) / 360                      # 220 deg (blue) -> 0 deg (red)
    return colorsys.hls_to_rgb(hue, 0.42, 0.80)


def reveal_css(step: int, total_steps: int) -> str:
    """``reveal_rgb`` as a CSS hex colour."""
    r, g, b = reveal_rgb(step, total_steps)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


def token_pieces(tok, ids) -> list[str]:
    """Each id as the text it stands for: ``tok.token_strings`` where the tokenizer has it (BPE),
    else one ``decode`` per id (characters)."""
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    if hasattr(tok, "token_strings"):
        return tok.token_strings(ids)
    return [tok.decode([i]) for i in ids]


def _story_hidden(tok, ids: list[int]) -> list[bool]:
    """True for positions a reader should not see once revealed: special tokens ([BOS]) and
    everything from the first [EOS] after position 0 on (the padding after the story's end)."""
    eos = getattr(tok, "eos_id", None)
    end = ids.index(eos, 1) if eos is not None and eos in ids[1:] else len(ids)
    specials = getattr(tok, "special_ids", set())
    return [int(i) in specials or k >= end for k, i in enumerate(ids)]


def _row_layout(tok, trace, row: int):
    """One row of a trace as the renderers lay it out: final ids, their text pieces, which are
    hidden once revealed (specials, [EOS] padding), and the step that revealed each."""
    final = trace.final[row].tolist()
    return final, token_pieces(tok, final), _story_hidden(tok, final), trace.reveal_step[row].tolist()


def _check_trace(trace, row: int):
    if not hasattr(trace, "states") or not trace.states or getattr(trace, "reveal_step", None) is None:
        raise ValueError("trace: expected a minidlm.sampling.Trace with states and reveal_step")
    B = trace.final.shape[0]
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < B:
        raise ValueError(f"row: expected an int in [0, {B}), got {row!r}")


def _check_step(trace, step: int) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= trace.steps:
        raise ValueError(f"step: expected an int in [0, {trace.steps}], got {step!r}")
    return step


# ----------------------------------------------------------------------------- HTML
_CARD = ("font-family: 'Segoe UI', 'Helvetica Neue', Arial, sans-serif; background: #ffffff; "
         f"color: {TEXT_DARK}; border: 1px solid #d0d7de; border-radius: 10px; padding: 0.7em 1em; "
         "max-width: 56em; box-sizing: border-box")


def _span_token(word: str, colour: str | None, bold: bool = False, title: str = "") -> str:
    style = f"color: {colour}" if colour else ""
    if bold:
        style += "; font-weight: 700; text-decoration: underline; text-underline-offset: 0.18em"
    t = f' title="{_html.escape(title)}"' if title else ""
    return f'<span class="mdlm-tok" style="{style}"{t}>{_html.escape(word)}</span>'


def _span_mask(word: str) -> str:
    # The hidden word sits in the box in transparent ink, so the box is exactly as wide as the
    # word that will replace it and the text does not jump when it is revealed.
    return ('<span class="mdlm-mask" style="background: ' + MASK_GREY + '; color: transparent; '
            'border-radius: 0.25em; box-shadow: inset -2px 0 0 #ffffff; user-select: none; '
            '-webkit-user-select: none">'
            f'{_html.escape(word or "_")}</span>')


def _token_markup(piece: str, masked: bool, colour: str | None, bold: bool = False, title: str = "") -> str:
    lead = " " if piece.startswith(" ") else ""
    word = piece[len(lead):]
    return lead + (_span_mask(word) if masked else _span_token(word, colour, bold, title))


def _legend(total: int) -> str:
    stops = ", ".join(reveal_css(s, 5) for s in range(1, 6))
    return ('<div class="mdlm-legend" style="font-size: 0.55em; color: #57606a; margin-top: 0.6em">'
            '<span style="display: inline-block; width: 8em; height: 0.7em; vertical-align: middle; '
            f'border-radius: 0.3em; background: linear-gradient(to right, {stops})"></span>'
            f' colour = the step that revealed the token (step 1 &#8594; step {total}); '
            f'<span style="background: {MASK_GREY}; border-radius: 0.25em">&#8199;&#8199;&#8199;</span>'
            ' = still [MASK]; <u><b>underlined</b></u> = revealed at this step</div>')


def trace_step_html(tok, trace, step: int, row: int = 0, big: bool = False, label: str = "") -> str:
    """One step of a sampling trace as an HTML card (lessons 00 and 07).

    Masked slots are grey boxes (class ``mdlm-mask``) as wide as the word they hide; revealed
    tokens (class ``mdlm-tok``) are coloured by the step that revealed them (``reveal_css``), the
    ones revealed at exactly ``step`` underlined; tokens given from the start (the prompt) are
    dark. Special tokens and the [EOS] padding after the story's end are hidden once revealed,
    as in ``trace_frames_ansi``. A header shows the step counter (class ``mdlm-step``) and how
    many slots are still masked. ``big`` uses classroom-sized text. A trace whose tokens may change
    after they appear (``trace.revises``, lesson 15) is drawn by ``viz_revisions.revision_step_html``.
    """
    if getattr(trace, "revises", False):
        from .viz_revisions import revision_step_html
        return revision_step_html(tok, trace, step, row, big, label)
    _check_trace(trace, row)
    step = _check_step(trace, step)
    total = trace.steps
    mask_id = tok.mask_id
    final, pieces, hidden, reveal = _row_layout(tok, trace, row)
    state = trace.states[step][row].tolist()
    parts, n_masked, n_new, n_pad = [], 0, 0, 0
    for piece, tok_id, r, hide in zip(pieces, state, reveal, hidden):
        masked = tok_id == mask_id
        n_masked += masked
        new = (not masked) and r == step and step > 0
        n_new += new
        n_pad += new and hide
        if not masked and hide:
            continue
        colour = reveal_css(r, total) if r > 0 else None
        parts.append(_token_markup(piece, masked, colour, bold=(r == step and step > 0),
                                   title=f"revealed at step {r}" if r > 0 else ""))
    size = "30px" if big else "17px"
    counter = (f'<span class="mdlm-step" style="font-weight: 700">step {step} / {total}</span>'
               f' &middot; {n_masked} masked &middot; {n_new} revealed at this step')
    if n_pad:
        counter += f" ({n_pad} of them [EOS] padding, hidden)"
    if label:
        counter = f"{_html.escape(label)} &middot; " + counter
    return (f'<div class="mdlm-card" style="{_CARD}; font-size: {size}">'
            f'<div class="mdlm-header" style="font-size: 0.6em; color: #57606a; margin-bottom: 0.4em">{counter}</div>'
            f'<div class="mdlm-text" style="line-height: 1.75; white-space: pre-wrap">{"".join(parts)}</div>'
            f'{_legend(total)}</div>')


def masked_text_html(tok, x0, xt, big: bool = False, header: str = "") -> str:
    """A clean sequence ``x0`` shown as it looks after masking (``xt``): kept tokens dark, masked
    ones as grey boxes as wide as the hidden word (lesson 02). x0, xt: (L,) or (1, L) ids."""
    x0 = torch.as_tensor(x0).reshape(-1).tolist()
    xt = torch.as_tensor(xt).reshape(-1).tolist()
    if len(x0) != len(xt):
        raise ValueError(f"x0, xt: expected the same length, got {len(x0)} and {len(xt)}")
    parts = [_token_markup(p, t == tok.mask_id, None) for p, t in zip(token_pieces(tok, x0), xt)]
    head = (f'<div class="mdlm-header" style="font-size: 0.6em; color: #57606a; margin-bottom: 0.4em">{header}</div>'
            if header else "")
    return (f'<div class="mdlm-card" style="{_CARD}; font-size: {"30px" if big else "17px"}">{head}'
            f'<div class="mdlm-text" style="line-height: 1.75; white-space: pre-wrap">{"".join(parts)}</div></div>')


# ----------------------------------------------------------------------------- figures
def _plt():
    import matplotlib.pyplot as plt
    return plt


def confidence_heatmap(trace, row: int = 0, ax=None, title: str | None = None):
    """Steps x positions: the score each still-masked position's candidate had at each step (the
    model's probability of the drawn token for ``low_confidence``, ``ancestral`` and ``adaptive``;
    a uniform random number for ``random``). Blank where the position was already revealed.
    Small crosses mark the commits of each step. Returns the Axes (lesson 07)."""
    _check_trace(trace, row)
    if not trace.confidences:
        raise ValueError("trace: expected recorded confidences (one (B, L) tensor per step)")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    conf = torch.stack([c[row].float() for c in trace.confidences])           # (steps, L)
    conf = torch.where(torch.isfinite(conf), conf, torch.full_like(conf, float("nan")))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#f4f4f4")
    im = ax.imshow(conf.numpy(), aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                   extent=(-0.5, conf.shape[1] - 0.5, conf.shape[0] + 0.5, 0.5))
    reveal = trace.reveal_step[row]
    pos = torch.nonzero(reveal > 0).flatten()
    ax.scatter(pos.numpy(), reveal[pos].numpy(), marker="x", s=14, c="white", linewidths=0.9)
    ax.set_xlabel("position in the sequence")
    ax.set_ylabel("step")
    ax.set_title(title or "confidence of each masked position's candidate (x = committed)")
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    return ax


def schedule_curves(names=("loglinear", "linear", "cosine"), ax=None, n_points: int = 400):
    """Two panels for noise schedules (lesson 02): alpha(t), the probability that a token is still
    clean at time t, and the NELBO weight w(t) = -alpha'(t)/(1 - alpha(t)) on a log scale.

    names: schedule names of ``minidlm.schedules`` or ``Schedule`` objects (e.g.
    ``EsoLMSchedule(alpha0=0.5)``). ax: None or a pair of Axes. Returns the pair of Axes."""
    from .schedules import Schedule, get_schedule

    if isinstance(names, (str, Schedule)):
        names = [names]
    scheds = [get_schedule(n) for n in names]
    if not scheds:
        raise ValueError("names: expected at least one schedule")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    if len(ax) != 2:
        raise ValueError("ax: expected None or a pair of Axes (alpha, weight)")
    t = torch.linspace(1e-3, 1.0, n_points, dtype=torch.float64)
    for name, s in zip(names, scheds):
        label = name if isinstance(name, str) else repr(s)
        ax[0].plot(t.numpy(), s.alpha(t).numpy(), label=label)
        w = s.weight(t)
        ax[1].plot(t.numpy(), w.clamp_min(1e-12).numpy(), label=label)
    ax[0].set(xlabel="t", ylabel=r"$\alpha(t)$ = P(token still clean)", ylim=(-0.03, 1.03),
              title="how much survives at time t")
    ax[1].set(xlabel="t", ylabel=r"$w(t) = -\alpha'(t)/(1-\alpha(t))$", yscale="log",
              title="NELBO weight of a masked token's loss")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    return ax


def attention_mask_heatmap(mask, ax=None, title: str = "attention mask", tick_labels=None,
                           n_clean: int | None = None, show_bias: bool = False):
    """A boolean (query, key) attention mask as a grid (lessons 06 and 09): dark = query i may
    attend to key j (bias 0), light = forbidden (bias -inf). ``tick_labels`` names the slots;
    ``n_clean`` draws the line between clean slots and [MASK] slots; ``show_bias`` writes 0 / -inf
    in every cell. Returns the Axes."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() != 2:
        raise ValueError(f"mask: expected a 2-d bool tensor (queries, keys), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
    plt = _plt()
    from matplotlib.colors import ListedColormap

    Lq, Lk = mask.shape
    if ax is None:
        side = min(7.0, 1.6 + 0.32 * max(Lq, Lk))
        _, ax = plt.subplots(figsize=(side, side))
    ax.imshow(mask.int().cpu().numpy(), cmap=ListedColormap(["#eef0f3", "#2f5d9e"]), vmin=0, vmax=1,
              interpolation="nearest")
    if max(Lq, Lk) <= 40:                                     # grid lines between cells
        ax.set_xticks([x - 0.5 for x in range(Lk + 1)], minor=True)
        ax.set_yticks([y - 0.5 for y in range(Lq + 1)], minor=True)
        ax.grid(which="minor", color="white", linewidth=1.0)
        ax.tick_params(which="minor", length=0)
    if tick_labels is not None:
        ax.set_xticks(range(Lk), [str(s) for s in tick_labels][:Lk], fontsize=8, rotation=90)
        ax.set_yticks(range(Lq), [str(s) for s in tick_labels][:Lq], fontsize=8)
    if show_bias and max(Lq, Lk) <= 16:
        for i in range(Lq):
            for j in range(Lk):
                ok = bool(mask[i, j])
                ax.text(j, i, "0" if ok else "−∞", ha="center", va="center", fontsize=7,
                        color="white" if ok else "#6e7781")
    if n_clean is not None and 0 < n_clean < max(Lq, Lk):
        ax.axhline(n_clean - 0.5, color="#d1242f", linewidth=1.6)
        ax.axvline(n_clean - 0.5, color="#d1242f", linewidth=1.6)
    ax.set_xlabel("key j (attended to)")
    ax.set_ylabel("query i (attending)")
    ax.set_title(title)
    return ax


def esolm_mask_panels(n_clean: int, L: int = 8, axes=None, show_bias: bool = False):
    """Eso-LM's diffusion-phase masks, variant A and variant B side by side, in SORTED
    coordinates: the ``n_clean`` clean slots first (c0, c1, ...), the [MASK] slots after them
    (m0, m1, ...); the red lines mark the boundary (lesson 09). Returns the Figure."""
    from .masks import esolm_diffusion_mask

    plt = _plt()
    if axes is None:
        side = min(5.5, 1.8 + 0.3 * L)
        fig, axes = plt.subplots(1, 2, figsize=(2 * side + 0.4, side))
    else:
        fig = axes[0].figure
    labels = [f"c{i}" for i in range(n_clean)] + [f"m{i}" for i in range(L - n_clean)]
    blurbs = {"A": "clean tokens see each other", "B": "causal: cacheable clean K/V"}
    for ax, variant in zip(axes, ("A", "B")):
        attention_mask_heatmap(esolm_diffusion_mask(n_clean, L, variant), ax=ax, tick_labels=labels,
                               n_clean=n_clean, show_bias=show_bias,
                               title=f"variant {variant}: {blurbs[variant]}")
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 90, close: bool = True) -> bytes:
    """A matplotlib Figure as PNG bytes (what the widgets show; closes the figure by default)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        _plt().close(fig)
    return buf.getvalue()


# The offline animation (lessons 00, 07) lives in animation.py; importable from here as before.
from .animation import _offline_controls, trace_animation_jshtml  # noqa: E402,F401


# The widgets (lessons 00, 02, 07, 09) live in widgets.py; importable from here as before, lazily, because
# widgets.py imports the renderers above (so `import minidlm.widgets` first works too).
_WIDGET_NAMES = ("_in_colab", "STRATEGIES", "DEFAULT_STRATEGIES", "sample_trace", "_widgets", "DenoisingPlayer",
                 "denoising_player", "ForwardSlider", "forward_slider", "MaskExplorer", "mask_explorer")


def __getattr__(name: str):
    if name in _WIDGET_NAMES:
        from . import widgets
        return getattr(widgets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Lesson 06's training figures live in training_plots.py; importable from here.
from .training_plots import training_curves, valid_vs_seconds  # noqa: E402,F401
