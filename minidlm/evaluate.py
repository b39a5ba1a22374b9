"""Measuring models and samples (lessons 05 and 13): validation NELBO / perplexity, LLaDA's Monte
Carlo conditional log-likelihood, sample quality under the tiny-tales checker, unigram entropy
(mode collapse), and task accuracy.
"""
from __future__ import annotations

import math
from collections import Counter

import torch

from ._validate import check_positive_int, check_tensor, make_generator
from .forward import uniform
from .losses import masked_cross_entropy
from .sampling import _device_of, generate, generate_adaptive, generate_ar
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
                   alpha0: float | None = None, length_first: bool = True, threshold: float | None = None,
                   return_calls: bool = False, steps_per_block: int | None = None, remdm: dict | None = None):
    """Draw n stories from a trained model, starting from [BOS]. For an MDM the row length is the
    model's max_len and ``steps`` defaults to L / 2; an Eso-LM model (``objective="esolm"``, built
    with max_len = 2 L) samples L = max_len / 2 tokens in two phases with ``alpha0``.
    length_first (MDM without blocks): the first step draws where the story ends (``length.py``,
    lesson 08); False gives LLaDA's plain ordering, which favours the shortest stories.
    threshold (MDM): confidence-threshold decoding (``generate_adaptive``, lesson 08) instead of a
    fixed number of steps. return_calls: also return the mean number of network calls per story
    (a row's calls: the step at which its last token was committed).
    A BD3-LM (``objective="bd3lm"``, lesson 14, built with max_len = 2 L) decodes blocks of
    ``block_length`` tokens with ``steps_per_block`` calls each (or ``threshold``) and stops at
    the block that ends the story; its calls are the calls each row needed.
    A uniform-state model (``objective="udlm"``, lesson 15) runs ``uniform.uniform_generate`` with
    ``steps`` calls (default L / 2). ``remdm`` (MDM, lesson 15): the keyword arguments of
    ``remask.remdm_generate`` (strategy, eta_cap, ...): ReMDM remasking with ``steps`` steps; a row's
    calls are those it would need sampled alone: the first step and every step after one that
    changed it (a step that changed nothing reuses the last output; with eta_cap = 0, MDLM's
    ancestral sampler, that caps the calls near the length however many steps)."""
    L = model.config.max_len // 2 if objective in ("esolm", "bd3lm") else model.config.max_len
    texts, calls = [], []
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        if objective == "ar":
            x, _ = generate_ar(model, L, batch_size=b, bos_id=tok.bos_id, temperature=temperature, generator=g)
        elif objective == "bd3lm":
            from .blocks import bd3_generate
            if block_length is None:
                raise ValueError("block_length: required to sample from a BD3-LM (its block size)")
            rule = dict(threshold=threshold) if threshold is not None else dict(steps_per_block=steps_per_block)
            x, tr = bd3_generate(model, L, tok.mask_id, block_length, batch_size=b, bos_id=tok.bos_id,
                                 eos_id=tok.eos_id, temperature=temperature, generator=g, **rule)
            calls += tr.calls.tolist()
        elif objective == "udlm":
            from .uniform import uniform_generate
            x, tr = uniform_generate(model, L, steps or L // 2, tok.mask_id, batch_size=b,
                                     prompt=torch.tensor([tok.bos_id]), temperature=temperature, generator=g)
            calls += [tr.nfe] * b
        elif remdm is not None:
            from .remask import remdm_generate
            x, tr = remdm_generate(model, L, steps or L // 2, tok.mask_id, batch_size=b,
                                   prompt=torch.tensor([tok.bos_id]), temperature=temperature, generator=g, **remdm)
            # a row alone needs a call at step 1 and after every step that changed it
            changed = torch.stack([tr.changed_at(k).any(1) for k in range(1, tr.steps)]) if tr.steps > 1 \
                else torch.zeros(0, b, dtype=torch.bool)                       # (T - 1, b)
            calls += (1 + changed.sum(0)).tolist()
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
            eos = tok.eos_id if length_first and block_length is None else None
            if threshold is not None:
                x, tr = generate_adaptive(model, L, tok.mask_id, threshold=threshold, batch_size=b,
                                          prompt=torch.tensor([tok.bos_id]), block_length=block_length,
                                          temperature=temperature, generator=g, eos_id=eos)
            else:
                x, tr = generate(model, L, s, tok.mask_id, batch_size=b, prompt=torch.tensor([tok.bos_id]),
                                 remasking=remasking, block_length=block_length, temperature=temperature,
                                 generator=g, eos_id=eos)
            calls += tr.reveal_step.max(1).values.tolist()
        texts += decode_samples(tok, x)
    if return_calls:
        return texts, (sum(calls) / len(calls) if calls else float("nan"))
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


def _ids_2d(name: str, ids, B: int | None) -> torch.Tensor:
    """(N,) or (B, N) integer ids -> (B, N) (a 1-D row is repeated B times when B is given)."""
    check_tensor(name, ids, dtype_kind="int")
    if ids.dim() == 1:
        ids = ids[None] if B is None else ids[None].expand(B, -1)
    elif ids.dim() != 2:
        raise ValueError(f"{name}: expected (N,) or (B, N) token ids, got shape {tuple(ids.shape)}")
    if B is not None and ids.shape[0] != B:
        raise ValueError(f"{name}: expected {B} rows to match answer, got {ids.shape[0]}")
    if (ids < 0).any():
        raise ValueError(f"{name}: expected token ids >= 0")
    return ids.long()


@torch.no_grad()
def llada_log_likelihood(model, prompt, answer, mask_id: int, *, n_samples: int = 128, batch_size: int = 32,
                         generator=None, return_stderr: bool = False):
    """LLaDA's Monte Carlo estimate of a lower bound on log p(answer | prompt), in nats (lesson 05).

    Each of ``n_samples`` draws per example: l ~ U{1..N} (N = answer length), exactly l answer
    positions masked uniformly at random (the prompt never is), one bidirectional pass over
    [prompt ; masked answer], and the SUBS cross-entropy summed over the masked answer tokens,
    weighted by N / l. The mean over draws estimates -ELBO >= -log p; the result is its negative.
    Unlike MDLM's 1/t weight the N / l weight is bounded (l >= 1), so the variance is low; a
    context-free model makes the bound exact. Draws are i.i.d. (LLaDA's own code spreads l evenly
    over each mini-batch instead), so the standard error is std / sqrt(n_samples).

    prompt: (P,) or (B, P) ids (P may be 0; None = no prompt); answer: (N,) or (B, N) ids, N >= 1,
    no [MASK]; batch_size: rows per network call. Returns a float for a 1-D answer, a (B,) float64
    CPU tensor for a batched one; with ``return_stderr`` a pair (estimate, standard error) of the
    same kind (the standard error is nan when n_samples = 1).
    """
    if not callable(model):
        raise ValueError("model: expected a callable returning logits (B, L, V)")
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0:
        raise ValueError(f"mask_id: expected a non-negative int token id, got {mask_id!r}")
    check_positive_int("n_samples", n_samples)
    check_positive_int("batch_size", batch_size)
    if not isinstance(return_stderr, bool):
        raise ValueError(f"return_stderr: expected True or False, got {return_stderr!r}")
    answer = answer if isinstance(answer, torch.Tensor) else torch.as_tensor(answer)
    if answer.numel() == 0:
        raise ValueError("answer: expected at least one token, got an empty answer")
    single = answer.dim() == 1
    ans = _ids_2d("answer", answer, None)                                     # (B, N)
    B, N = ans.shape
    if (ans == mask_id).any():
        raise ValueError(f"answer: expected no [MASK] (mask_id={mask_id}) among the answer tokens")
    if prompt is None:
        prm = torch.zeros(B, 0, dtype=torch.long)                             # (B, 0)
    else:
        prompt = prompt if isinstance(prompt, torch.Tensor) else torch.as_tensor(prompt, dtype=torch.long)
        if single and prompt.dim() != 1:
            raise ValueError(f"prompt: expected a 1-D prompt (P,) for a 1-D answer, got shape {tuple(prompt.shape)}")
        prm = _ids_2d("prompt", prompt, B)                                    # (B, P)
    device = _device_of(model, None)
    g = make_generator(generator)
    seq = torch.cat([prm.to(device), ans.to(device)], 1)                      # (B, P + N)
    P = prm.shape[1]
    row_example = torch.arange(B).repeat_interleave(n_samples)                # (B * S,) example of each row
    est = torch.empty(B * n_samples, dtype=torch.float64)                     # (B * S,) draws of -ELBO
    gen_device = g.device if g is not None else torch.device("cpu")
    for lo in range(0, B * n_samples, batch_size):
        rows = row_example[lo: lo + batch_size]                               # (R,)
        R = rows.numel()
        n_mask = torch.randint(1, N + 1, (R,), generator=g, device=gen_device).to(device)   # (R,) l ~ U{1..N}
        rank = uniform((R, N), g, device).argsort(1).argsort(1)               # (R, N) random order
        masked = rank < n_mask[:, None]                                       # (R, N) exactly l per row
        x0 = seq[rows.to(device)]                                             # (R, P + N)
        xt = x0.clone()
        xt[:, P:] = x0[:, P:].masked_fill(masked, mask_id)                    # (R, P + N)
        logits = model(xt)                                                    # (R, P + N, V)
        if not isinstance(logits, torch.Tensor) or logits.shape[:2] != xt.shape or logits.dim() != 3:
            raise ValueError(f"model: expected logits of shape ({R}, {P + N}, V), got "
                             f"{getattr(logits, 'shape', type(logits).__name__)}")
        V = logits.shape[-1]
        if mask_id >= V:
            raise ValueError(f"mask_id: expected an id in [0, {V}), got {mask_id}")
        if int(seq.max()) >= V:
            raise ValueError(f"prompt, answer: expected token ids < vocabulary size {V}, got {int(seq.max())}")
        ce = masked_cross_entropy(logits[:, P:], x0[:, P:], xt[:, P:], mask_id)   # (R, N), 0 where clean
        est[lo: lo + R] = (ce.double().sum(1) * N / n_mask.double()).cpu()      # (R,) weight N / l
    draws = est.view(B, n_samples)                                            # (B, S)
    log_lik = -draws.mean(1)                                                  # (B,)
    stderr = (draws.std(1) / math.sqrt(n_samples) if n_samples > 1
              else torch.full((B,), float("nan"), dtype=torch.float64))      # (B,)
    if single:
        log_lik, stderr = float(log_lik[0]), float(stderr[0])
    return (log_lik, stderr) if return_stderr else log_lik
