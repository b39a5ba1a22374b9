"""Measuring models and samples (lessons 05 and 13): validation NELBO / perplexity, sample quality
under the tiny-tales checker, unigram entropy (mode collapse), and task accuracy.
"""
from __future__ import annotations

import math
from collections import Counter

import torch

from .sampling import generate, generate_ar
from .tales import pieces, score_texts


def decode_samples(tok, x: torch.Tensor) -> list[str]:
    """Rows of token ids -> texts: drop [BOS], cut at the first [EOS], drop leftover specials."""
    texts = []
    for row in x.tolist():
        if row and row[0] == tok.bos_id:
            row = row[1:]
        if tok.eos_id in row:
            row = row[: row.index(tok.eos_id)]
        texts.append(tok.decode(row, skip_special=True).strip())
    return texts


def unigram_entropy(texts: list[str]) -> float:
    """Entropy (nats) of the word/punctuation distribution over all texts: it drops when a model
    collapses onto a few templates."""
    counts = Counter(p for t in texts for p in pieces(t))
    n = sum(counts.values())
    if n == 0:
        return 0.0
    return -sum(c / n * math.log(c / n) for c in counts.values())


@torch.no_grad()
def sample_stories(model, tok, n: int = 64, *, objective: str = "mdm", steps: int | None = None,
                   remasking: str = "low_confidence", block_length: int | None = None,
                   temperature: float = 1.0, seed: int = 0, batch_size: int = 64,
                   alpha0: float | None = None) -> list[str]:
    """Draw n stories from a trained model, starting from [BOS]. For an MDM the row length is the
    model's max_len and ``steps`` defaults to L / 2; an Eso-LM model (``objective="esolm"``, built
    with max_len = 2 L) samples L = max_len / 2 tokens in two phases with ``alpha0``."""
    L = model.config.max_len // 2 if objective == "esolm" else model.config.max_len
    texts = []
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        if objective == "ar":
            x, _ = generate_ar(model, L, batch_size=b, bos_id=tok.bos_id, temperature=temperature, generator=g)
        elif objective == "esolm":
            from .esolm import esolm_sample
            if alpha0 is None:
                raise ValueError("alpha0: required to sample from an Eso-LM model")
            x, _ = esolm_sample(model, L, tok.mask_id, alpha0, batch_size=b, prompt=torch.tensor([tok.bos_id]),
                                temperature=temperature, generator=g)
        else:
            gen = L - 1
            blk = block_length or gen
            s = steps or L // 2
            s = max(gen // blk, (s // (gen // blk)) * (gen // blk))
            x, _ = generate(model, L, s, tok.mask_id, batch_size=b, prompt=torch.tensor([tok.bos_id]),
                            remasking=remasking, block_length=block_length, temperature=temperature,
                            generator=g)
        texts += decode_samples(tok, x)
    return texts


def story_report(texts: list[str]) -> dict:
    """The tiny-tales checker's scores plus unigram entropy, for a list of sampled stories."""
    rep = score_texts(texts)
    rep["unigram_entropy"] = unigram_entropy(texts)
    return rep


def accuracy(predictions: list[str], answers: list[str]) -> float:
    """Share of exact matches (after stripping spaces and a final period)."""
    if len(predictions) != len(answers) or not answers:
        raise ValueError("predictions, answers: expected two non-empty lists of the same length")
    norm = lambda s: s.strip().rstrip(".").strip()
    return sum(norm(p) == norm(a) for p, a in zip(predictions, answers)) / len(answers)


@torch.no_grad()
def generative_perplexity(judge, x: torch.Tensor, eos_id: int) -> float:
    """Perplexity of samples x (B, L), starting with [BOS], under an AR judge: exp of the mean
    next-token NLL over each row up to and including its first [EOS] (padding is not scored).
    Lower means the judge finds the samples more plausible; watch unigram entropy beside it, since
    a collapsed sampler also scores well."""
    from .losses import token_cross_entropy

    ce = token_cross_entropy(judge(x, is_causal=True)[:, :-1], x[:, 1:])        # (B, L-1)
    tgt = x[:, 1:]
    is_eos = (tgt == eos_id).long()
    before_first_eos = (is_eos.cumsum(1) - is_eos) == 0                            # up to the first EOS
    return math.exp((ce * before_first_eos).sum().item() / before_first_eos.sum().clamp(min=1).item())
