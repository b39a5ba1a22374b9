"""Pure renderers for traces (lessons 00 and 07): a sampler's step as coloured terminal text. The
notebook widgets (issue: the course) are thin shells over functions like these.
"""
from __future__ import annotations

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
    ([BOS], [EOS] padding) are hidden by default once revealed."""
    final = trace.final[row]
    pieces = tok.token_strings(final)
    ids = final.tolist()
    end = ids.index(tok.eos_id, 1) if tok.eos_id in ids[1:] else len(ids)   # the story stops at [EOS]
    specials = [int(i) in tok.special_ids or k >= end for k, i in enumerate(ids)]
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
