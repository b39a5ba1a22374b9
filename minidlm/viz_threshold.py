"""Lesson 08's threshold-decoding figure: how many tokens each network call committed, and the
step at which each token of the story was revealed. The static figure and the slider draw it the
same way. Below it, the lesson's other figures (first-step confidence, calls per story, quality
against cost, the length bias)."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ._validate import _model_config
from .evaluate import decode_samples
from .adaptive import generate_adaptive


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


# ----------------------------------------------------------------------------- lesson 08's plots
# Pure renderers: the notebook runs the samplers and scores the stories, these functions only draw.

def first_step_confidence(conf, is_eos) -> Figure:
    """Lesson 08, section 1: the top token's probability at each slot after position 0 (``conf``),
    from an all-masked story; orange where that token is [EOS] (``is_eos``), blue elsewhere."""
    fig, ax = plt.subplots(figsize=(12, 3))
    ax.bar(range(1, len(conf) + 1), conf, color=["tab:orange" if e else "tab:blue" for e in is_eos])
    ax.set_xlabel("position (0 is [BOS])")
    ax.set_ylabel("confidence of the top token")
    ax.set_title("Step 1 from an all-masked story: orange = the top token is [EOS]")
    ax.set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def calls_histogram(calls: dict, masks: dict, threshold: float, L: int) -> Figure:
    """Lesson 08, section 3: per input, a histogram of the network calls each story took at
    ``threshold`` (``calls``: name -> (B,) calls), labelled with its mean number of masks (``masks``:
    name -> (B,) masks); bins of 2 calls up to ``L``."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name in calls:
        ax.hist(calls[name], bins=range(0, L + 2, 2), alpha=0.6, label=f"{name} ({masks[name].float().mean():.0f} masks)")
    ax.set_xlabel(f"network calls per story at threshold {threshold}")
    ax.set_ylabel("stories")
    ax.legend()
    fig.tight_layout()
    return fig


QUALITY_PANELS = (("well_formed_sentences", "well-formed sentences"), ("name_consistent", "one consistent name"),
                  ("unigram_entropy", "unigram entropy (nats)"))
METHOD_STYLE = {"low_confidence": "o-", "random": "s--", "threshold": "^-"}


def quality_vs_calls(results: dict, corpus: dict) -> Figure:
    """Lesson 08, section 5: three scores of the checker against the network calls per story, one
    line per method (``results``: method -> the reports of ``measure``, each with "calls"), the
    corpus's score dotted (``corpus``: the checker's report on real stories)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, label) in zip(axes, QUALITY_PANELS):
        for method, rows_ in results.items():
            ax.plot([r["calls"] for r in rows_], [r[key] for r in rows_], METHOD_STYLE.get(method, "o-"), label=method)
        ax.axhline(corpus[key], color="gray", lw=1, ls=":", label="corpus")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("network calls per story")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def length_bias(lengths: dict, mean_reveal: dict) -> Figure:
    """Lesson 08, section 7: left, the mean story length of each setting (``lengths``: name -> words,
    the corpus included); right, the mean reveal step / steps of each position after [BOS]
    (``mean_reveal``: name -> (L - 1,) curve)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
    a1.barh(list(lengths), list(lengths.values()), color="tab:blue")
    a1.set_xlabel("mean story length (words and punctuation)")
    a1.invert_yaxis()
    for name, curve in mean_reveal.items():
        a2.plot(range(1, len(curve) + 1), curve, label=name)
    a2.set_xlabel("position")
    a2.set_ylabel("mean reveal step / steps")
    a2.set_title("when is each position decided? (0 = first call, 1 = last)")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
