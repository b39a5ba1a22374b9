"""Eso-LM: one model between masked diffusion and autoregression (lessons 09-10).

Eso-LM (Sahoo et al. 2025) generates in two phases. A diffusion phase unmasks a share alpha0 of
the positions in a few parallel steps (a draft z0 with the rest still [MASK]); a sequential phase
then fills the remaining [MASK]s one at a time, left to right. alpha0 = 1 is masked diffusion
(MDLM), alpha0 = 0 is autoregression; in between it interpolates. Its likelihood bound (the
hybrid NELBO, reference ALGORITHMS.md section 2) has one term per phase:

    L = E_{z0}[ sum_{l masked in z0} -log x_theta^l(z0 with positions before l made clean)[x^l] ]   (sequential)
      + E_{t, z_t}[ alpha0 / (1 - alpha0 (1 - t)) * sum_{l masked in z_t} -log x_theta^l(z_t)[x^l] ]  (diffusion)

with alpha_t = alpha0 (1 - t) (``schedules.EsoLMSchedule``). Both phases run the SAME Transformer
over tokens sorted clean-first (``masks.sort_indices``); only the attention mask differs
(``masks.esolm_diffusion_mask``, ``masks.esolm_sequential_mask``).

Variant B makes attention causal in the sorted order, so a clean token's keys/values never depend
on anything decoded after it: they can be cached EXACTLY while sampling, and every step costs only
the tokens it touches (``esolm_sample``, lesson 10).

Variant A is the paper's Eso-LM (A) (official code s-sahoo/Eso-LMs, scripts/esolm/train_owt_esolma_*.sh:
``diffusion_attn_mode=mixed2``, ``sequential_attn_mode=mixed``, ``sequential_shuffle=False``): the
tokens that are clean in the input see each other bidirectionally in BOTH phases (prefix-LM over the
clean prefix of the sorted order), [MASK]s and the tokens decoded by the sequential phase stay
causal. Better likelihood, but a clean token's keys/values change when more tokens become clean,
so there is no exact cache: it samples with ``use_cache=False`` only.

Sampling schedule (``esolm_schedule``): by default (``counts="binomial"``) the diffusion phase
runs T steps from t = 1 to 0 under alpha_t = alpha0 (1 - t) and reveals each still-masked position
with probability (alpha_s - alpha_t) / (1 - alpha_t), as the paper (and MDLM's ancestral sampler)
does; what is still masked at t = 0 goes to the sequential phase.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ._validate import (check_bool, check_choice, check_denoiser, check_filters, check_ids, check_positive_int,
                        check_temperature, check_tensor, make_generator)
from .forward import mask_tokens, sample_times, uniform
from .losses import _masked_ce as masked_cross_entropy   # x0 is checked once, below
from .masks import VARIANTS, causal_mask, esolm_diffusion_mask, esolm_sequential_mask, gather_sorted, sort_indices
from .model import KVCache, pinned_sdpa
from .sampling import (MAX_ANCESTRAL_STEPS, Trace, _device_of, _new_trace, _record, _start, draw_candidates,
                       filter_logits)
from .schedules import EsoLMSchedule


# ----------------------------------------------------------------------------- checks
def _check_alpha0(alpha0) -> float:
    if isinstance(alpha0, bool) or not isinstance(alpha0, (int, float)) or not 0 <= alpha0 <= 1:
        raise ValueError(f"alpha0: expected a number in [0, 1], got {alpha0!r}")
    return float(alpha0)


def _mask_id_of(model, mask_id):
    """``mask_id`` (the model's ``config.mask_id`` when None), checked as the samplers check it."""
    cfg = getattr(model, "config", None)
    if mask_id is None and cfg is None:
        raise ValueError("mask_id: the model has no config.mask_id; build it with mask_id=... or pass mask_id")
    check_denoiser(model, getattr(cfg, "mask_id", None) if mask_id is None else mask_id)
    return int(getattr(cfg, "mask_id", None) if mask_id is None else mask_id)


def _keep_rows(keep, B: int, L: int, device) -> torch.Tensor:
    """keep as a (B, L) bool tensor (all False when None)."""
    if keep is None:
        return torch.zeros(B, L, dtype=torch.bool, device=device)
    check_tensor("keep", keep, dtype_kind="bool")
    if keep.dim() not in (1, 2) or keep.shape[-1] != L or (keep.dim() == 2 and keep.shape[0] != B):
        raise ValueError(f"keep: expected shape ({L},) or ({B}, {L}), got {tuple(keep.shape)}")
    return keep.to(device).expand(B, L)


# ----------------------------------------------------------------------------- the loss (lesson 09)
def esolm_loss(model, x0: torch.Tensor, alpha0: float, variant: str = "B", kappa: float = 0.5,
               generator=None, keep: torch.Tensor | None = None, *, eps: float = 1e-3,
               mask_id: int | None = None):
    """Eso-LM's hybrid NELBO on a clean batch x0 (B, L), in nats per counted token. Lesson 09.

    The batch is split: the first round(kappa * B) rows (rounding half up) estimate the diffusion
    term, the other rows the sequential term, and

        loss = sum(seq CE) / #counted tokens of the seq rows + sum(weighted diff CE) / #counted tokens of the diff rows,

    counted = the positions not in ``keep``. Each part estimates its term per token, so the sum
    estimates the whole bound per token.

    Diffusion rows: t ~ antithetic ``sample_times``, z_t masks each token with probability
      1 - alpha0 (1 - t); tokens are sorted clean-first (shuffled within groups, ``masks.sort_indices``),
      run through the model with the variant's mask and their original RoPE positions, and each
      masked token's CE (SUBS: [MASK] logit -inf) is weighted by alpha0 / (1 - alpha0 (1 - t)).
    Sequential rows: z0 masks each token with probability 1 - alpha0. The input is [z0 ; x] (2L),
      both halves sorted the same way (z0's clean tokens first, its [MASK]s left to right),
      positions = the original positions for both halves, mask = ``esolm_sequential_mask`` of the
      variant; the loss is the CE of the z0-half [MASK] queries against their true tokens.
      Variant B shuffles the clean tokens (random order; official ``sequential_shuffle=True``).
      Variant A keeps them in their natural order (official ``sequential_shuffle=False``: its
      clean tokens see each other both ways, so their order changes no loss term) and lets them
      attend to each other bidirectionally in the x half (``esolm_sequential_mask(..., variant="A",
      n_clean=#clean tokens of z0 per row)``).
      The model's max_len must therefore be >= 2L (positions stay < L): the training loop builds
      Eso-LM models with max_len = 2 * seq_len.

    keep: (L,) or (B, L) bool, positions never masked (the [BOS] at 0) and not counted.
    alpha0 in {0, 1}: one term is identically 0 (alpha0 = 1: z0 = x has no [MASK]; alpha0 = 0: the
      diffusion weight is 0). That term is then not computed at all (no network call), its rows
      contribute 0, and its part of the batch may be empty (kappa = 0 resp. 1 spends every row on
      the other term; for 0 < alpha0 < 1 both parts must be non-empty).
    Exact relations (tested): alpha0 = 0 gives the autoregressive loss of the seq rows in Eso-LM's
      parameterization (a [MASK] query at l sees x[<l] and predicts x[l]); alpha0 = 1 gives
      ``losses.mdlm_nelbo`` (log-linear) of the diff rows for the same z_t and logits.

    Random draws, in this order from ``generator``: t, the z_t mask, the diffusion sort offsets (diff
    rows), then the z0 mask and (variant B only) the sequential sort offsets (seq rows); a skipped
    term draws nothing.
    Returns (loss, parts): parts holds detached "seq" and "diff" terms, the row/token counts and the
    draws ("t", "zt", "diff_idx", "z0", "seq_idx"; None when skipped).
    """
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    alpha0 = _check_alpha0(alpha0)
    check_choice("variant", variant, VARIANTS)
    if isinstance(kappa, bool) or not isinstance(kappa, (int, float)) or not 0 <= kappa <= 1:
        raise ValueError(f"kappa: expected a number in [0, 1], got {kappa!r}")
    if not isinstance(eps, (int, float)) or not 0 <= eps < 1:
        raise ValueError(f"eps: expected a number in [0, 1), got {eps!r}")
    mask_id = _mask_id_of(model, mask_id)
    check_ids("x0", x0, getattr(getattr(model, "config", None), "vocab_size", None), mask_id=mask_id)
    B, L = x0.shape
    n_diff = int(math.floor(kappa * B + 0.5))
    n_seq = B - n_diff
    if n_diff == 0 and alpha0 > 0:
        raise ValueError(f"kappa: round(kappa * B) = round({kappa} * {B}) = 0 rows for the diffusion term; "
                         f"expected at least 1 when alpha0 = {alpha0} > 0")
    if n_seq == 0 and alpha0 < 1:
        raise ValueError(f"kappa: no rows left for the sequential term (kappa={kappa}, B={B}); expected "
                         f"at least 1 when alpha0 = {alpha0} < 1")
    do_diff, do_seq = n_diff > 0 and alpha0 > 0, n_seq > 0 and alpha0 < 1
    cfg = getattr(model, "config", None)
    if do_seq and cfg is not None and cfg.max_len < 2 * L:
        raise ValueError(f"model: the sequential term runs [z0 ; x] of length 2L = {2 * L} but the model's "
                         f"max_len is {cfg.max_len}; build it with max_len >= 2 * seq_len")
    g = make_generator(generator)
    counted = ~_keep_rows(keep, B, L, x0.device)                                   # (B, L)
    zero = torch.zeros((), device=x0.device)
    parts = {"n_diff_rows": n_diff, "n_seq_rows": n_seq,
             "n_diff_tokens": int(counted[:n_diff].sum()), "n_seq_tokens": int(counted[n_diff:].sum()),
             "t": None, "zt": None, "diff_idx": None, "z0": None, "seq_idx": None}

    diff_term = zero
    if do_diff:
        xd = x0[:n_diff]                                                            # (Bd, L)
        sched = EsoLMSchedule(alpha0)
        t = sample_times(n_diff, eps, generator=g, device=x0.device)               # (Bd,)
        zt = mask_tokens(xd, sched.alpha(t.double()), mask_id, g, keep=~counted[:n_diff])  # (Bd, L)
        is_m = zt == mask_id
        idx = sort_indices(is_m, shuffle=True, generator=g)                        # (Bd, L)
        zs, xs = gather_sorted(zt, idx), gather_sorted(xd, idx)                    # (Bd, L) sorted
        if variant == "B":  # the B mask is the causal mask in sorted order: let SDPA use its causal kernel
            logits = model(zs, positions=idx, is_causal=True)                      # (Bd, L, V) sorted
        else:
            mask = esolm_diffusion_mask((~is_m).sum(1), L, "A")                    # (Bd, L, L)
            logits = model(zs, attn_mask=mask, positions=idx)
        w = sched.weight(t.double()).float()                                       # (Bd,) alpha0/(1-alpha_t)
        ce = masked_cross_entropy(logits, xs, zs, mask_id)                          # (Bd, L), 0 at clean
        diff_term = (w[:, None] * ce).sum() / counted[:n_diff].sum().clamp(min=1)
        parts.update(t=t, zt=zt, diff_idx=idx)

    seq_term = zero
    if do_seq:
        xq = x0[n_diff:]                                                            # (Bs, L)
        z0 = mask_tokens(xq, alpha0, mask_id, g, keep=~counted[n_diff:])           # (Bs, L)
        if variant == "B":   # clean tokens shuffled, [MASK]s left to right
            idx = sort_indices(z0 == mask_id, shuffle=True, keep_masks_in_order=True, generator=g)  # (Bs, L)
        else:                # A: natural order in both groups, nothing drawn
            idx = sort_indices(z0 == mask_id, shuffle=False)                         # (Bs, L)
        z0s, xqs = gather_sorted(z0, idx), gather_sorted(xq, idx)                  # (Bs, L) sorted
        inp = torch.cat([z0s, xqs], 1)                                              # (Bs, 2L): [z0 ; x]
        pos = torch.cat([idx, idx], 1)                                              # (Bs, 2L): original positions
        if variant == "B":
            mask = esolm_sequential_mask(L, x0.device)                              # (2L, 2L)
        else:
            mask = esolm_sequential_mask(L, x0.device, variant="A", n_clean=(z0s != mask_id).sum(1))  # (Bs, 2L, 2L)
        logits = model(inp, attn_mask=mask, positions=pos)[:, :L]                  # (Bs, L, V) z0 half
        ce = masked_cross_entropy(logits, xqs, z0s, mask_id)                        # (Bs, L), 0 at clean
        seq_term = ce.sum() / counted[n_diff:].sum().clamp(min=1)
        parts.update(z0=z0, seq_idx=idx)

    parts.update(seq=seq_term.detach(), diff=diff_term.detach())
    return seq_term + diff_term, parts


# ----------------------------------------------------------------------------- sampling (lesson 10)
@dataclass
class EsoTrace(Trace):
    """A ``sampling.Trace`` plus what is particular to Eso-LM sampling:

    order:            (B, L) the decode order: order[b, j] = the position decoded j-th (the prompt
                      first); ``masks.gather_sorted(tokens, order)`` is the sorted sequence;
    step_sizes:       tokens decoded at each step (the diffusion steps, then 1s);
    n_diffusion:      positions decoded by the diffusion phase (the rest are sequential);
    cache_lengths:    len(cache) after each step (clean tokens only; empty without a cache);
    peak_cache_bytes: the most bytes the KV cache held at once (0 without a cache).
    """
    order: torch.Tensor | None = None
    step_sizes: list = field(default_factory=list)
    n_diffusion: int = 0
    cache_lengths: list = field(default_factory=list)
    peak_cache_bytes: int = 0


COUNTS = ("binomial", "even")


def esolm_schedule(n_gen: int, alpha0: float, diffusion_steps: int | None = None,
                   generator=None, *, counts: str = "binomial") -> tuple[int, list[int]]:
    """How many tokens each step decodes, chosen before sampling starts (lesson 10).

    counts="binomial" (the default; the paper's sampler, official ``EsoLM._tokens_unmasked_per_step``):
      T = ``diffusion_steps`` diffusion steps (default max(1, round(alpha0 * n_gen / 4)), about four
      tokens per step) run from t = 1 to 0 under alpha_t = alpha0 (1 - t); the step from t to
      s = t - 1/T reveals each still-masked position with probability (alpha_s - alpha_t) / (1 - alpha_t),
      i.e. Binomial(#still masked, that probability) positions. Whatever is still masked at t = 0
      (a share 1 - alpha0 in expectation) goes to the sequential phase. It is the default because it
      matches the forward process the model was trained on: after each step (at time s) the
      positions decoded so far are exactly q's clean positions at s (each clean with probability
      alpha_s, independently; the count per step is what q gives), and the sequential phase
      receives a z0 ~ q(. | alpha0), as in the sequential term of the loss. Steps that draw 0
      tokens are dropped (no network call is made for them), so there may be fewer than T.
      How it is drawn: one uniform u per position; a position is revealed at the first step whose
      alpha_s exceeds u (never, if u >= alpha0). Given the r positions still masked before a step,
      the number revealed is then exactly Binomial(r, (alpha_s - alpha_t) / (1 - alpha_t)): the same
      law as drawing the per-step binomials one after another, with n_gen draws in all, and the
      same n_diffusion as counts="even" for the same generator.
    counts="even" (the earlier minidlm schedule): each of the n_gen positions goes to the diffusion
      phase with probability alpha0 (their count is Binomial(n_gen, alpha0)); they are split as evenly
      as possible over ``diffusion_steps`` steps (default: about a quarter of their count, at least 1;
      never more steps than tokens). A fixed number of calls, for speed benchmarks at a set budget.

    Returns (n_diffusion, step sizes): the (nonzero) diffusion steps' sizes followed by
    n_gen - n_diffusion 1s (the sequential phase).
    """
    check_positive_int("n_gen", n_gen)
    alpha0 = _check_alpha0(alpha0)
    if diffusion_steps is not None:
        check_positive_int("diffusion_steps", diffusion_steps)
        if diffusion_steps > MAX_ANCESTRAL_STEPS:   # the binomial grid holds T values: 10**9 would not fit
            raise ValueError(f"diffusion_steps: expected at most {MAX_ANCESTRAL_STEPS}, got {diffusion_steps}")
    check_choice("counts", counts, COUNTS)
    u = uniform((n_gen,), make_generator(generator), "cpu")                        # (n_gen,) in [0, 1)
    if counts == "binomial":
        T = max(1, round(alpha0 * n_gen / 4)) if diffusion_steps is None else diffusion_steps
        # alpha at the end of step k (s = 1 - k/T) is alpha0 k/T; k/T = 1 exactly at k = T, so the last is alpha0
        alpha_end = alpha0 * (torch.arange(1, T + 1, dtype=torch.float64) / T)    # (T,) increasing
        step = torch.searchsorted(alpha_end, u, right=True)                         # (n_gen,) 0-based step, T = never
        per_step = torch.bincount(step[step < T], minlength=T)                      # (T,) tokens revealed per step
        sizes = [int(c) for c in per_step if c > 0]
        n_diff = sum(sizes)
        return n_diff, sizes + [1] * (n_gen - n_diff)
    n_diff = int((u < alpha0).sum())                                                # Binomial(n_gen, alpha0)
    if n_diff == 0:
        return 0, [1] * n_gen
    steps = max(1, round(n_diff / 4)) if diffusion_steps is None else diffusion_steps
    steps = min(steps, n_diff)
    sizes = [n_diff // steps + (1 if i < n_diff % steps else 0) for i in range(steps)]
    return n_diff, sizes + [1] * (n_gen - n_diff)


def _window_mask(n_cached: int, W: int, device) -> torch.Tensor | None:
    """(W, n_cached + W): every cached key visible, causal inside the window. None when W = 1
    (the single query sees everything: no mask needed, SDPA may use its fastest kernel)."""
    if W == 1:
        return None
    return torch.cat([torch.ones(W, n_cached, dtype=torch.bool, device=device), causal_mask(W, device)], 1)


@torch.no_grad()
def esolm_sample(model, length: int, mask_id: int, alpha0: float, *, batch_size: int = 1, prompt=None,
                 use_cache: bool = True, temperature: float = 1.0, diffusion_steps: int | None = None,
                 variant: str = "B", top_k: int | None = None, top_p: float | None = None,
                 generator=None, device=None, cache: KVCache | None = None, return_logits: bool = False,
                 counts: str = "binomial"):
    """Two-phase Eso-LM sampling with the exact KV cache of variant B (lesson 10).

    1. The schedule comes first (``esolm_schedule(L - P, alpha0, diffusion_steps, generator,
       counts=counts)``, the first draw from ``generator``): how many positions each diffusion step
       decodes (drawn once per batch, so every row takes the same step sizes). ``counts="binomial"``
       (default) is the paper's: T steps from t = 1 to 0, each revealing a binomial count of the
       still-masked positions, as the forward process the model was trained on; ``counts="even"``
       splits a Binomial(L - P, alpha0) count evenly over the steps (a fixed number of calls). Each row
       then picks ITS diffusion positions and their order at random; its sequential positions are
       the rest, left to right. The prompt (``prompt``: (P,) or (B, P) ids at positions 0..P-1,
       e.g. [BOS]) is clean from the start and first in the decode order.
    2. In decode order the attention is causal (variant B), so step k only needs
         - the tokens decoded at step k-1 (now clean, with the tokens just sampled), and
         - the [MASK]s to decode now,
       fed with their original positions; they attend to the whole cache and causally inside this
       window. Afterwards ``cache.truncate`` drops the [MASK]s' K/V (overwritten next step), so only
       clean tokens stay cached: memory grows linearly with the length, and every clean token is
       processed exactly once.
    ``use_cache=False`` recomputes from scratch at every step over the sorted sequence [every clean
    token so far, in decode order ; the [MASK]s decoded now] under the causal sorted mask (variant B):
    the same numbers (tested), only slower.
    ``variant="A"`` (the paper's Eso-LM (A); no exact cache, needs ``use_cache=False``) feeds the same
    b sorted slots with A's prefix-LM mask ``esolm_diffusion_mask(cutoff, b, "A")``: the first
    ``cutoff`` slots see each other both ways, the rest are causal. As in the official sampler
    (s-sahoo/Eso-LMs algo.py, ``EsoLM.generate_samples``: ``mixed2`` with ``cutoffs``), a diffusion
    step uses cutoff = a (every token clean so far, as in A's diffusion training mask), a sequential
    step cutoff = P + n_diffusion (the prompt and the diffusion-phase tokens, i.e. the clean tokens
    of z0; the tokens decoded one by one stay causal, as in A's sequential training mask).
    cache: optionally a preallocated ``model.new_cache(batch_size, capacity >= length)`` to reuse;
    it is emptied first.

    Returns (tokens (B, L), EsoTrace); with ``return_logits=True`` also a list, one per step, of
    the float32 logits (B, k, V) at the k positions decoded at that step, in decode order.
    """
    V = check_denoiser(model, mask_id, length=length)
    cfg = getattr(model, "config", None)
    alpha0 = _check_alpha0(alpha0)
    check_positive_int("batch_size", batch_size)
    check_choice("variant", variant, VARIANTS)
    check_choice("counts", counts, COUNTS)
    if not isinstance(use_cache, bool):
        raise ValueError(f"use_cache: expected a bool, got {use_cache!r}")
    if use_cache and not hasattr(model, "new_cache"):
        raise ValueError("model: use_cache=True needs a minidlm Model (model.new_cache); pass use_cache=False")
    if use_cache and variant != "B":
        raise ValueError("variant: only variant 'B' has an exact KV cache; use variant='B' or use_cache=False")
    check_temperature(temperature)
    check_filters(top_k, top_p)
    check_bool("return_logits", return_logits)
    device = _device_of(model, device)
    g = make_generator(generator)

    x = _start(length, batch_size, mask_id, prompt, device, V)                     # (B, L) original order
    B, L = x.shape
    P = 0 if prompt is None else torch.as_tensor(prompt).shape[-1]
    n_diff, sizes = esolm_schedule(L - P, alpha0, diffusion_steps, g, counts=counts)
    n_diff_steps = len(sizes) - (L - P - n_diff)

    # the decode order: prompt, then each row's diffusion positions at random, then the rest left to right
    perm = torch.argsort(uniform((B, L - P), g, device), dim=1) + P                 # (B, L-P) random order
    rest = perm[:, n_diff:].sort(1).values                                          # (B, L-P-n_diff) left to right
    prefix = torch.arange(P, device=device).expand(B, P)                            # (B, P)
    order = torch.cat([prefix, perm[:, :n_diff], rest], 1)                          # (B, L): slot -> position
    xs = gather_sorted(x, order)                                                    # (B, L) sorted tokens

    if use_cache:
        if cache is None:
            cache = model.new_cache(B, device=device, capacity=L)
        else:
            _check_cache(cache, B, L, cfg)
            cache.truncate(0)
    tr = _new_trace(x, mask_id)
    tr = EsoTrace(states=tr.states, reveal_step=tr.reveal_step, order=order.cpu(), step_sizes=list(sizes),
                  n_diffusion=n_diff)
    tr._mask_id = mask_id
    all_logits = []
    rows = torch.arange(B, device=device)[:, None]                                  # (B, 1)
    a = P            # sorted slots [a, b) are decoded at this step
    fed = 0          # slots [0, fed) are in the cache
    for step, k in enumerate(sizes, start=1):
        b = a + k
        if use_cache:
            W = b - fed
            with pinned_sdpa(device):                                                 # GPU trap 1
                out = model(xs[:, fed:b], attn_mask=_window_mask(fed, W, device), positions=order[:, fed:b],
                            cache=cache)                                             # (B, W, V)
            tr.peak_cache_bytes = max(tr.peak_cache_bytes, cache.nbytes())
            logits = out[:, a - fed:].float()                                        # (B, k, V)
            cache.truncate(a)          # keep the clean tokens, drop the [MASK]s' K/V
            fed = a
            tr.cache_lengths.append(len(cache))
        else:
            if variant == "A":   # clean prefix bidirectional: all clean so far (diffusion), z0's clean (sequential)
                cutoff = a if step <= n_diff_steps else P + n_diff
                out = model(xs[:, :b], attn_mask=esolm_diffusion_mask(cutoff, b, "A", device),
                            positions=order[:, :b])                                  # (B, b, V)
            else:
                out = model(xs[:, :b], positions=order[:, :b], is_causal=True)       # (B, b, V)
            logits = out[:, a:b].float()                                             # (B, k, V)
        tr.nfe += 1
        logits[..., mask_id] = float("-inf")
        if return_logits:
            all_logits.append(logits.clone())
        cand = draw_candidates(filter_logits(logits, top_k, top_p), temperature, g)  # (B, k)
        conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)    # (B, k)
        xs[:, a:b] = cand
        where = order[:, a:b]                                                        # (B, k) positions
        x[rows, where] = cand
        commit = torch.zeros(B, L, dtype=torch.bool, device=device)
        commit[rows, where] = True
        conf_full = torch.full((B, L), float("nan"), device=device)
        conf_full[rows, where] = conf.float()
        _record(tr, x, commit, conf_full, commit, step)
        a = b
    return (x, tr, all_logits) if return_logits else (x, tr)


def _check_cache(cache, B: int, L: int, cfg) -> None:
    if not isinstance(cache, KVCache):
        raise ValueError(f"cache: expected a KVCache (model.new_cache(...)), got {type(cache).__name__}")
    if cfg is not None and cache.n_layer != cfg.n_layer:
        raise ValueError(f"cache: built for {cache.n_layer} layers, the model has {cfg.n_layer}")
    if cache.batch_size is not None and cache.batch_size != B:
        raise ValueError(f"cache: holds batch size {cache.batch_size} but batch_size={B}; "
                         f"a cache cannot be reused across batch sizes")
    if cache.capacity is not None and cache.capacity < L:
        raise ValueError(f"cache: capacity {cache.capacity} is smaller than length={L}")


def kv_cache_bytes(model, length: int, batch_size: int = 1, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of K and V for ``length`` clean tokens: 2 * n_layer * batch * length * d_model * element
    size. Linear in the length (lesson 10)."""
    check_positive_int("length", length)
    check_positive_int("batch_size", batch_size)
    cfg = model.config
    return 2 * cfg.n_layer * batch_size * length * cfg.d_model * torch.empty((), dtype=dtype).element_size()


def cache_bytes_by_length(model, lengths, *, alpha0: float = 1.0, batch_size: int = 1, mask_id: int | None = None,
                          generator=0) -> dict[int, int]:
    """Peak KV-cache bytes of ``esolm_sample`` at each length (lesson 10's linear-memory plot)."""
    mask_id = _mask_id_of(model, mask_id)
    if isinstance(lengths, (int, str)) or not hasattr(lengths, "__iter__"):
        raise ValueError(f"lengths: expected an iterable of lengths, got {lengths!r}")
    out = {}
    for L in lengths:
        check_positive_int("lengths", L)
        _, tr = esolm_sample(model, L, mask_id, alpha0, batch_size=batch_size, generator=generator)
        out[L] = tr.peak_cache_bytes
    return out
