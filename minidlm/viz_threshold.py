"""Lesson 08's threshold-decoding figure: how many tokens each network call committed, and the
step at which each token of the story was revealed. The static figure and the slider draw it the
same way."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ._validate import _model_config
from .adaptive import generate_adaptive
from .evaluate import decode_samples


def reveal_strip(trace, labels, row: int = 0, ax=None, title: str = ""):
    """One row's final tokens (``labels``: their strings), each coloured by the step that committed
    it (dark = early, light = late). Position 0 (the prompt, [BOS]) is left out."""
    ax = ax or plt.gca()
    steps = trace.reveal_step[row].float()
    ax.imshow(steps[None, 1:].numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(labels) - 1))
    ax.set_xticklabels([s.strip() or "_" for s in labels[1:]], rotation=90, fontsize=7)
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return ax


def threshold_figure(model, tok, threshold: float = 0.9, seed: int = 0, prompt=None, temperature: float = 1.0):
    """One run of ``generate_adaptive`` at ``threshold`` from ``prompt``: a bar per network call (the
    tokens it committed) above the reveal strip of the story. ``model``: a minidlm denoiser (its
    max_len is the length drawn); ``tok``: its tokenizer. Returns (figure, the story as text)."""
    cfg = _model_config(model)
    if cfg is None:
        raise ValueError(f"model: expected a minidlm Model (its config gives the length), got {type(model).__name__}")
    if not hasattr(tok, "mask_id") or not hasattr(tok, "token_strings"):
        raise ValueError(f"tok: expected a minidlm tokenizer (mask_id, token_strings), got {type(tok).__name__}")
    L = cfg.max_len
    x, trace = generate_adaptive(model, L, tok.mask_id, threshold=threshold, prompt=prompt,
                                 temperature=temperature, generator=seed)
    per_step = [int((trace.reveal_step[0] == k).sum()) for k in range(1, trace.steps + 1)]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(12, 4.6), gridspec_kw={"height_ratios": [2, 1]})
    a1.bar(range(1, len(per_step) + 1), per_step)
    a1.set_xlabel("step (network call)")
    a1.set_ylabel("tokens committed")
    n = int((trace.reveal_step[0] > 0).sum())
    a1.set_title(f"threshold {threshold:.2f}: {trace.nfe} network calls for {n} tokens "
                 f"({n / trace.nfe:.1f} tokens per call)")
    reveal_strip(trace, tok.token_strings(trace.final[0]), ax=a2,
                 title="reveal step of each token (dark = early, light = late)")
    fig.tight_layout()
    return fig, decode_samples(tok, x)[0]
