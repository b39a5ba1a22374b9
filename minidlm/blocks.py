"""Block diffusion, BD3-LM (lesson 14): autoregressive over blocks, masked diffusion inside a block.

Arriola et al. (ICLR 2025) split a row x of L tokens into blocks of ``block_size`` K and factorize

    log p(x) = sum_b log p(x^b | x^{<b}),

bounding each term by an MDLM NELBO for block b *given the clean blocks before it*:

    L_BD = sum_b E_t E_q [ w(t) * sum_{l in block b, x_t^l = [MASK]} -log p(x^l | x_t^b, x^{<b}) ],
    w(t) = -alpha'(t) / (1 - alpha(t))   (1/t for the log-linear schedule).

K = 1 is an autoregressive model, K = L is MDLM: the block size is the dial between the two.

Training in one forward pass (BD3-LM's vectorized trick): feed [x_t ; x_0] (2L tokens, both halves
at RoPE positions 0..L-1) with ``training_mask``: a noisy block sees itself (bidirectionally) and
the clean blocks before it; a clean block sees the clean blocks up to itself. Every block gets its
own time t, so one pass trains all L/K conditional denoisers at once.

Sampling (``bd3_generate``): denoise one block at a time with an in-block rule (LLaDA's fixed
count, low confidence first, or Fast-dLLM's confidence threshold); the finished blocks never
change, so their keys and values sit in an exact KV cache and each call feeds only the new block
(plus, once, the block that was just finished). Because blocks go left to right, the sampler can
stop at the first block that contains [EOS]: variable-length output, which a fixed-length MDM
sampler cannot give.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch

from ._validate import check_positive_int, check_temperature, make_generator
from .forward import sample_times, uniform
from .losses import masked_cross_entropy
from .sampling import Trace, draw_candidates, transfer_counts
from .schedules import get_schedule


# ----------------------------------------------------------------------------- masks

def block_index(L: int, block_size: int, device=None) -> torch.Tensor:
    """(L,) long: the block each position belongs to, l // block_size (the last block may be shorter)."""
    check_positive_int("L", L)
    check_positive_int("block_size", block_size)
    return torch.arange(L, device=device) // block_size


def block_causal_mask(L: int, block_size: int, device=None) -> torch.Tensor:
    """(L, L) bool, True = query i may attend to key j: j's block <= i's block.
    Full attention inside a block, causal between blocks (K = 1: causal; K >= L: bidirectional)."""
    b = block_index(L, block_size, device)
    return b[None, :] <= b[:, None]                                   # (L, L)


def training_mask(L: int, block_size: int, device=None) -> torch.Tensor:
    """(2L, 2L) bool for one forward pass over [x_t ; x_0] (lesson 14, BD3-LM's vectorized training).

    rows/keys 0..L-1 are the noisy half, L..2L-1 the clean half:
      noisy block b -> noisy block b (block-diagonal: a block is denoised as a whole),
      noisy block b -> clean blocks < b (offset block-causal: the context it is conditioned on),
      clean block b -> clean blocks <= b (block-causal: the cache the sampler will hold),
      clean -> noisy: never (the clean half must not see the noise of any block).
    """
    b = block_index(L, block_size, device)
    bq, bk = b[:, None], b[None, :]                                   # (L, 1), (1, L)
    noisy_noisy = bk == bq                                            # (L, L)
    noisy_clean = bk < bq                                             # (L, L)
    clean_noisy = torch.zeros(L, L, dtype=torch.bool, device=device)
    clean_clean = bk <= bq                                            # (L, L)
    top = torch.cat([noisy_noisy, noisy_clean], dim=1)                # (L, 2L)
    bottom = torch.cat([clean_noisy, clean_clean], dim=1)             # (L, 2L)
    return torch.cat([top, bottom], dim=0)                            # (2L, 2L)


# ----------------------------------------------------------------------------- the loss

def block_times(batch_size: int, n_blocks: int, eps: float = 1e-3, generator=None, device=None) -> torch.Tensor:
    """(B, n_blocks) float64 times, one per block, antithetic over all B * n_blocks draws."""
    return sample_times(batch_size * n_blocks, eps, generator=generator, device=device).view(batch_size, n_blocks)


def bd3_noise(x0: torch.Tensor, mask_id: int, block_size: int, generator, schedule="loglinear",
              eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw BD3-LM's forward process for a clean batch x0 (B, L): a time per block, then each token
    (but [BOS] at position 0) masked with probability 1 - alpha(t of its block).
    Returns x_t (B, L) and the per-position times t (B, L) float64.
    Draw order: block_times (B * n_blocks antithetic times), then U(0,1) (B, L) float64 for masking.
    With block_size >= L this is exactly mdm_loss's draw (one time per row, then the mask)."""
    sched = get_schedule(schedule)
    B, L = x0.shape
    b = block_index(L, block_size, x0.device)                         # (L,)
    n_blocks = int(b[-1]) + 1
    t = block_times(B, n_blocks, eps, generator, x0.device)[:, b]     # (B, L): t of each position's block
    u = uniform((B, L), make_generator(generator), x0.device)         # (B, L)
    masked = u >= sched.alpha(t)                                      # P(masked) = 1 - alpha(t)
    masked[:, 0] = False                                              # [BOS] stays clean
    return torch.where(masked, torch.full_like(x0, mask_id), x0), t


def bd3_logits(model, xt: torch.Tensor, x0: torch.Tensor, block_size: int) -> torch.Tensor:
    """The denoiser's logits (B, L, V) for every noisy block, all blocks in one pass over [x_t ; x_0]."""
    B, L = x0.shape
    pos = torch.arange(L, device=x0.device)
    logits = model(torch.cat([xt, x0], dim=1), attn_mask=training_mask(L, block_size, x0.device),
                   positions=torch.cat([pos, pos]))                   # (B, 2L, V)
    return logits[:, :L]                                              # (B, L, V): the noisy half


def bd3_loss(model, x0: torch.Tensor, mask_id: int, block_size: int, generator, schedule="loglinear",
             eps: float = 1e-3, rows: slice | None = None, reduction: str = "token") -> torch.Tensor:
    """BD3-LM's NELBO estimate for a clean batch x0 (B, L), summed over blocks (lesson 14).

    "token": per token the model produces (divided by B (L - 1): [BOS] is given), nats; "none":
    (B, L) per-position terms w(t_b) * CE at masked positions, 0 elsewhere.
    ``rows``: the loss of these rows only; the noise is drawn for the whole batch first, so a row's
    noise does not depend on the split (as in ``objectives.mdm_loss``).
    The model needs max_len >= 2L (the two halves)."""
    sched = get_schedule(schedule)
    xt, t = bd3_noise(x0, mask_id, block_size, generator, schedule, eps)     # (B, L), (B, L)
    if rows is not None:
        x0, xt, t = x0[rows], xt[rows], t[rows]
    logits = bd3_logits(model, xt, x0, block_size)                           # (b, L, V)
    ce = masked_cross_entropy(logits.float(), x0, xt, mask_id)               # (b, L): 0 where clean
    per_pos = sched.weight(t).to(ce.dtype) * ce                              # (b, L)
    if reduction == "none":
        return per_pos
    if reduction != "token":
        raise ValueError(f"reduction: expected 'token' or 'none', got {reduction!r}")
    return per_pos.sum() / (x0.shape[0] * (x0.shape[1] - 1))


# ----------------------------------------------------------------------------- sampling

@dataclass
class BlockTrace(Trace):
    """A ``Trace`` plus what block decoding adds: ``calls`` (B,) network calls each row needed
    (up to the block that ended it), ``lengths`` (B,) tokens up to and including the first [EOS]
    (L where none), ``fed`` the number of tokens fed to the network at each call."""
    calls: torch.Tensor | None = None
    lengths: torch.Tensor | None = None
    fed: list = field(default_factory=list)


def _in_block_commit(conf, eligible, rule, count, threshold):
    """Which positions to commit this step: (B, Lb) bool. ``low_confidence``: the ``count`` (B,)
    most confident eligible positions; ``threshold``: every eligible position with conf >= threshold
    and at least the most confident one."""
    scored = torch.where(eligible, conf, torch.full_like(conf, float("-inf")))
    commit = torch.zeros_like(eligible)
    if rule == "threshold":
        commit = eligible & (conf >= threshold)
        best = scored.argmax(1)                                               # (B,)
        rows = eligible.any(1)
        commit[torch.arange(len(best), device=conf.device)[rows], best[rows]] = True
        return commit
    for r in range(conf.shape[0]):
        k = int(count[r])
        if k:
            commit[r, torch.topk(scored[r], k).indices] = True
    return commit


@torch.no_grad()
def bd3_generate(model, length: int, mask_id: int, block_size: int, *, steps_per_block: int | None = None,
                 threshold: float | None = None, batch_size: int = 1, prompt=None, bos_id: int | None = None,
                 eos_id: int | None = None, temperature: float = 1.0, generator=None, use_cache: bool = True,
                 device=None):
    """Block-by-block sampling from a BD3-LM (lesson 14). Returns (tokens (B, length), BlockTrace).

    Inside block b, the rule is LLaDA's (``steps_per_block`` calls, ``transfer_counts`` commits
    each, most confident first) or Fast-dLLM's (``threshold``: all candidates with probability
    >= threshold, at least one). A call feeds the tokens from the end of the cache to the end of
    block b with the block-causal mask; afterwards the cache is cut back to the start of block b,
    so it holds exactly the finished blocks (their keys and values computed as in training's clean
    half). ``use_cache=False`` feeds the whole prefix every call: the same logits (tested at 1e-5).

    ``eos_id``: a row is finished after the block in which it wrote [EOS]; everything after its
    first [EOS] becomes [EOS], and decoding stops when every row is finished (variable length).
    Random draws: per step, ``draw_candidates`` on the block's (B, Lb, V) logits (Gumbel noise).
    """
    if (steps_per_block is None) == (threshold is None):
        raise ValueError("steps_per_block: give exactly one of steps_per_block (LLaDA's count) or threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)
                                  or not 0 <= threshold <= 1):
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    check_positive_int("length", length)
    check_positive_int("block_size", block_size)
    check_positive_int("batch_size", batch_size)
    check_temperature(temperature)
    if steps_per_block is not None:
        check_positive_int("steps_per_block", steps_per_block)
        if steps_per_block > block_size:
            raise ValueError(f"steps_per_block: expected at most block_size={block_size} (one token per call "
                             f"at least), got {steps_per_block}")
    cfg = model.config
    if cfg.mask_id is not None and cfg.mask_id != mask_id:
        raise ValueError(f"mask_id: the model was built with mask_id={cfg.mask_id}, got {mask_id}")
    if length > cfg.max_len:
        raise ValueError(f"length: expected at most the model's max_len={cfg.max_len}, got {length}")
    device = device or next(model.parameters()).device
    g = make_generator(generator)
    if prompt is None:
        if bos_id is None:
            raise ValueError("bos_id: give the [BOS] id (or a prompt) to start from")
        prompt = torch.full((batch_size, 1), bos_id, dtype=torch.long)
    prompt = torch.as_tensor(prompt, dtype=torch.long, device=device)
    if prompt.dim() == 1:
        prompt = prompt[None].expand(batch_size, -1)
    if prompt.dim() != 2 or prompt.shape[0] != batch_size or not 0 < prompt.shape[1] < length:
        raise ValueError(f"prompt: expected (batch_size={batch_size}, P) ids with 0 < P < length={length}, "
                         f"got shape {tuple(prompt.shape)}")
    B, L, P = batch_size, length, prompt.shape[1]
    x = torch.full((B, L), mask_id, dtype=torch.long, device=device)
    x[:, :P] = prompt
    blk = block_index(L, block_size, device)                                 # (L,)
    cache = model.new_cache(B, capacity=L) if use_cache else None
    tr = BlockTrace(states=[x.cpu().clone()], reveal_step=torch.zeros_like(x, device="cpu"))
    tr._mask_id = mask_id
    tr.reveal_step[x.cpu() == mask_id] = -1
    tr.calls = torch.zeros(B, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    step = 0
    for lo in range(P // block_size * block_size, L, block_size):
        hi = min(lo + block_size, L)
        counts = transfer_counts((x[:, lo:hi] == mask_id).sum(1), steps_per_block) \
            if steps_per_block is not None else None                         # (B, steps_per_block)
        i = 0
        while (x[:, lo:hi] == mask_id).any():
            start = len(cache) if use_cache else 0
            keys = torch.arange(hi, device=device)
            attn = blk[keys][None, :] <= blk[start:hi][:, None]               # (hi - start, hi): block-causal
            logits = model(x[:, start:hi], attn_mask=attn, positions=torch.arange(start, hi, device=device),
                           cache=cache).float()[:, lo - start:]               # (B, Lb, V)
            if use_cache:
                cache.truncate(lo)                                            # keep the finished blocks only
            tr.nfe += 1
            tr.fed.append(hi - start)
            tr.calls += (~done).long().cpu()
            step += 1
            logits[..., mask_id] = float("-inf")
            cand = draw_candidates(logits, temperature, g)                    # (B, Lb)
            conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)  # (B, Lb)
            eligible = x[:, lo:hi] == mask_id
            count = counts[:, min(i, counts.shape[1] - 1)] if counts is not None else None
            commit = _in_block_commit(conf, eligible, "threshold" if threshold is not None else "low_confidence",
                                      count, threshold)
            x[:, lo:hi] = torch.where(commit, cand, x[:, lo:hi])
            full_commit = torch.zeros_like(x, dtype=torch.bool)
            full_commit[:, lo:hi] = commit
            tr.states.append(x.cpu().clone())
            tr.reveal_step[full_commit.cpu()] = step
            c = torch.full((B, L), float("nan"))
            c[:, lo:hi] = torch.where(eligible, conf, torch.full_like(conf, float("nan"))).cpu()
            tr.confidences.append(c)
            i += 1
        if eos_id is not None:
            done |= (x[:, :hi] == eos_id).any(1)
            if bool(done.all()):
                break
    if eos_id is not None:
        is_eos = x == eos_id                                                  # a prompt's [EOS] counts too
        after = is_eos.long().cumsum(1) > 0                                   # at or after the first [EOS]
        first = torch.where(is_eos.any(1), is_eos.float().argmax(1) + 1, torch.full((B,), L, device=device))
        x = torch.where(after | (x == mask_id), torch.full_like(x, eos_id), x)
        tr.lengths = first.cpu()
        if not torch.equal(tr.states[-1], x.cpu()):
            tr.states.append(x.cpu().clone())                                 # the [EOS] tail, no network call
            tr.confidences.append(torch.full((B, L), float("nan")))
            tr.reveal_step[tr.reveal_step == -1] = len(tr.states) - 1
    else:
        tr.lengths = torch.full((B,), L)
    return x, tr
