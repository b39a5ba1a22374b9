"""Figures of lesson 01 (tokens and data): how long a story is under tokenizers of different
vocabulary sizes, and how packing and one-story-per-row padding lay a corpus out in rows."""
from __future__ import annotations

import torch

from .viz import _plt


def vocab_length_figure(vocab_sizes, lengths, labels, axes=None):
    """Lesson 01, section 2. Left: the mean number of tokens per story against the vocabulary size
    (log scale), the first entry annotated with its label. Right: histograms of the tokens per
    story for the first and the last tokenizer. vocab_sizes: one int per tokenizer; lengths: one
    list of per-story token counts per tokenizer; labels: one name per tokenizer. Returns the two
    Axes."""
    if not (len(vocab_sizes) == len(lengths) == len(labels)) or len(labels) < 2:
        raise ValueError("vocab_sizes, lengths, labels: expected the same number (at least 2) of each")
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    means = [sum(n) / len(n) for n in lengths]
    axes[0].plot(vocab_sizes, means, "o-")
    axes[0].annotate(labels[0], (vocab_sizes[0], means[0]), textcoords="offset points", xytext=(6, -14))
    axes[0].set(xscale="log", xlabel="vocabulary size", ylabel="mean tokens per story",
                title="Bigger vocabulary, shorter sequences")
    for k in (0, -1):
        axes[1].hist(lengths[k], bins=30, alpha=0.6, label=labels[k])
    axes[1].set(xlabel="tokens per story", ylabel="stories")
    axes[1].legend()
    axes[0].figure.tight_layout()
    return axes


def story_map(rows: torch.Tensor, bos_id: int, eos_id: int, padded: bool) -> torch.Tensor:
    """A number per token naming its story (a new story starts at every [BOS]; ten colours, reused),
    and NaN (drawn white) for [EOS] padding, i.e. every [EOS] after the first of a row when
    ``padded``. rows: (B, L) ids. Returns (B, L) float."""
    story = (rows == bos_id).flatten().long().cumsum(0).view(rows.shape).float() % 10
    if padded:
        is_eos = (rows == eos_id).long()
        story[(is_eos.cumsum(1) > 1) & (is_eos == 1)] = float("nan")
    return story


def packing_figure(packed: torch.Tensor, padded: torch.Tensor, bos_id: int, eos_id: int,
                   n_rows: int = 12, axes=None):
    """Lesson 01, section 6: the first ``n_rows`` rows of a packed batch (stories run across rows)
    beside those of a padded one (one story per row, [EOS] padding white), one colour per story.
    Returns the two Axes."""
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    panels = [(packed[:n_rows], False, "pack_blocks: stories run across rows"),
              (padded[:n_rows], True, "pad_documents: one story per row, [EOS] padding (white)")]
    for ax, (rows, is_padded, title) in zip(axes, panels):
        ax.imshow(story_map(rows, bos_id, eos_id, is_padded).numpy(), aspect="auto", cmap="tab10",
                  interpolation="nearest")
        ax.set(title=title, xlabel="position in the row", ylabel="row")
        ax.title.set_fontsize(10)
    axes[0].figure.tight_layout()
    return axes
