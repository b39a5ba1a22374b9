"""Factorized reverse sampling (lessons 07, 08, 11).

A masked diffusion model predicts, for every [MASK], a distribution over the clean token given
everything visible. A sampler starts from all [MASK] (plus any prompt) and, step by step, commits
some masked positions to tokens drawn from those predictions; a committed token never changes.
Samplers differ only in *which* positions they commit at each step:

  ``generate(..., remasking="low_confidence")``  LLaDA: a fixed count per step, the most confident
                                                  candidates first (easy tokens first);
  ``generate(..., remasking="entropy")``         Dream: the same count, the most certain positions first;
  ``generate(..., remasking="random")``          the same count, positions chosen at random;
  ``eos_id=...``                                  the first call draws where the text ends (length.py);
  ``block_length=...``                            semi-autoregressive: blocks left to right.

``generate_ar`` is the autoregressive baseline with a KV cache. Every sampler returns the final
tokens and a ``Trace`` (the state after each step, when each position was revealed, the
confidences, the number of network calls) that the lessons replay and animate.
"""
from __future__ import annotations

import torch

from ._validate import (as_ids, check_bool, check_causal_model, check_cfg_scale, check_choice, check_denoiser,
                        check_eos_id, check_filters, check_ids, check_int, check_positive_int, check_temperature,
                        check_tensor, make_generator)
from .model import pinned_sdpa
from .trace import Trace  # also importable from here, as before

REMASKING = ("low_confidence", "entropy", "random")
# ancestral's steps may exceed the length (MDLM samples L = 1024 in T = 1000 steps; steps that reveal
# nothing cost no network call), but each still draws noise over (B, L, V): a million steps hang.
MAX_ANCESTRAL_STEPS = 4096


# ---------------------------------------------------------------- candidate tokens
def position_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of softmax(logits) at every position, float64 (B, L): the order of Dream's
    ``entropy`` remasking (lowest first). It does not depend on which token was drawn, so the
    committed token is an unbiased draw from the position's prediction; ranking by the drawn
    token's own probability (``low_confidence``) favours the likelier words and loses diversity."""
    logp = torch.log_softmax(logits.double(), -1)                              # (B, L, V)
    return -(logp.exp() * logp).nan_to_num().sum(-1)                          # (B, L)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Keep the top-k logits and/or the smallest set whose probability reaches top_p; -inf elsewhere."""
    check_filters(top_k, top_p)
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits.float(), -1)
        drop = probs.cumsum(-1) - probs > top_p            # mass before this token already >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def draw_candidates(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    """Sample token ids from softmax(logits / temperature) by the Gumbel-max trick, with the Gumbel
    noise in float64 (low-precision noise lowers diversity: Zheng et al. 2024). temperature 0 = argmax."""
    if check_temperature(temperature) == 0:
        return logits.argmax(-1)
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64,
                   device=generator.device if generator is not None else logits.device).to(logits.device)
    gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
    return (logits.double() / temperature + gumbel).argmax(-1)


def _check_common(model, steps, temperature, mask_id, length, top_k=None, top_p=None) -> int | None:
    """The checks every diffusion sampler shares, done once before the first network call.
    Returns the vocabulary size (None for a plain callable)."""
    V = check_denoiser(model, mask_id, length=length)
    check_positive_int("steps", steps)
    check_temperature(temperature)
    check_filters(top_k, top_p)
    return V


def _guided_logits(model, x: torch.Tensor, context: torch.Tensor, mask_id: int, cfg_scale: float) -> torch.Tensor:
    """The denoiser's float32 logits (B, L, V) for the state x (B, L), with LLaDA's classifier-free
    guidance when cfg_scale = w > 0 (lesson 07): one network call on the 2B rows [x ; x with the
    ``context`` (B, L) positions set to [MASK]], then uncond + (w + 1) * (cond - uncond).
    w = 0 is a plain call on x. The [MASK] logit is left as the model gave it."""
    if cfg_scale == 0:
        return model(x).float()                                              # (B, L, V)
    uncond_x = x.masked_fill(context, mask_id)                                # (B, L) context hidden
    both = model(torch.cat([x, uncond_x], 0)).float()                         # (2B, L, V)
    cond, uncond = both.chunk(2, 0)                                           # (B, L, V) each
    return uncond + (cfg_scale + 1) * (cond - uncond)                         # (B, L, V)


def _start(L, batch_size, mask_id, prompt, device, V=None):
    """All-[MASK] start with the prompt (B, P) or (P,) written at the front: ids in [0, V), no [MASK]."""
    check_positive_int("length", L)
    check_positive_int("batch_size", batch_size)
    x = torch.full((batch_size, L), mask_id, dtype=torch.long, device=device)
    if prompt is not None:
        prompt = as_ids("prompt", prompt, device=device)
        if prompt.dim() == 1:
            prompt = prompt[None].expand(batch_size, -1)
        if prompt.shape[0] != batch_size:
            raise ValueError(f"prompt: expected batch size {batch_size}, got {prompt.shape[0]}")
        if prompt.shape[1] >= L:
            raise ValueError(f"prompt: expected fewer than length={L} tokens, got {prompt.shape[1]}")
        check_ids("prompt", prompt, V, mask_id=mask_id)          # [MASK]s to fill: pass given= instead
        x[:, : prompt.shape[1]] = prompt
    return x


def transfer_counts(n_masked: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's schedule: how many tokens to commit at each of ``steps`` steps so all ``n_masked``
    are done: floor(n / steps) each, the first ``n mod steps`` steps one more. (B,) -> (B, steps)."""
    check_tensor("n_masked", n_masked, ndim=1, dtype_kind="int")
    check_positive_int("steps", steps)
    base = n_masked // steps                                   # (B,)
    rem = n_masked % steps                                     # (B,)
    counts = base[:, None].expand(-1, steps).clone()          # (B, steps)
    counts += (torch.arange(steps, device=n_masked.device)[None, :] < rem[:, None]).long()
    return counts


@torch.no_grad()
def generate(model, length: int, steps: int, mask_id: int, *, batch_size: int = 1, prompt=None,
             given: torch.Tensor | None = None, remasking: str = "low_confidence",
             block_length: int | None = None, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, generator=None, device=None, return_trace: bool = True,
             cfg_scale: float = 0.0, eos_id: int | None = None):
    """LLaDA-style sampling with a fixed number of commits per step (lessons 07-08).

    length: L tokens in all (prompt included); steps: T network calls in all; prompt: ids written
    at the front; given: a (B, L) start state where non-[MASK] tokens are fixed (infilling).
    block_length: semi-autoregressive blocks over the generated part (must divide it; steps must
    be a multiple of the number of blocks). Returns (tokens (B, L), Trace).

    Classifier-free guidance (LLaDA's ``cfg_scale``, lesson 07): with cfg_scale = w > 0 every step
    also asks the model for an *unconditional* prediction, the same state with the context hidden,
    and uses the logits uncond + (w + 1) * (cond - uncond): w = 0 is the plain model, larger w
    pushes towards tokens the context makes likelier. The context is every position that is not
    [MASK] in the start state (the prompt, or the given tokens when infilling; LLaDA's rule); tokens
    generated so far stay visible in both passes. Both passes run as ONE network call on a 2B batch,
    so ``trace.nfe`` still counts network calls (one per step) while the compute per call doubles.
    w > 0 needs a context in every row (else ValueError).

    eos_id: draw the length first (``length.py``, lesson 08): the first of the T calls only decides
    where the text ends, from the model's [EOS] probabilities, and fills the tail with [EOS]; the
    other T - 1 steps write the rest. For models trained on [EOS]-padded rows; it removes the
    short-story bias of low-confidence ordering. Not with block_length (blocks already decide the
    end left to right).
    """
    V = _check_common(model, steps, temperature, mask_id, length, top_k, top_p)
    check_choice("remasking", remasking, REMASKING)
    cfg_scale = check_cfg_scale(cfg_scale)
    check_eos_id(eos_id, V, mask_id)
    device = _device_of(model, device)
    g = make_generator(generator)
    x, start = _init_state(length, batch_size, mask_id, prompt, given, device, V)
    batch_size, length = x.shape
    context = x != mask_id                                                    # (B, L) prompt / given
    if cfg_scale > 0 and not bool(context.any(1).all()):
        raise ValueError("cfg_scale: guidance needs a context (a prompt or given tokens) in every row; "
                         "got a row that is all [MASK]")
    gen_len = length - start
    block_length = gen_len if block_length is None else block_length
    check_positive_int("block_length", block_length)
    if gen_len % block_length:
        raise ValueError(f"block_length: expected a divisor of the generated length {gen_len}, got {block_length}")
    if eos_id is not None and block_length != gen_len:
        raise ValueError("eos_id: the length-first draw works on the whole row; pass block_length=None")
    if eos_id is not None and steps < 2:
        raise ValueError(f"steps: drawing the length first takes one step; expected at least 2, got {steps}")
    n_blocks = gen_len // block_length
    if steps % n_blocks:
        raise ValueError(f"steps: expected a multiple of the number of blocks ({n_blocks}), got {steps}")
    trace = _new_trace(x, mask_id)
    step, no_eos = 0, None
    if eos_id is not None:
        x, no_eos = _length_step(model, x, context, mask_id, cfg_scale, eos_id, g, trace)
        step, steps = 1, steps - 1
    per_block = steps // n_blocks
    most_masked = int((x[:, start:] == mask_id).view(batch_size, n_blocks, block_length).sum(-1).max())
    if per_block > max(most_masked, 1) and eos_id is None:
        raise ValueError(f"steps: {steps} steps ({per_block} per block) but a block has only "
                         f"{most_masked} masked positions; expected at most one step per position")
    for b in range(n_blocks):
        lo, hi = start + b * block_length, start + (b + 1) * block_length
        counts = transfer_counts((x[:, lo:hi] == mask_id).sum(1), per_block)   # (B, per_block)
        for i in range(per_block):
            if not bool(counts[:, i].any()):
                continue                                       # nothing left to commit (after a length draw)
            step += 1
            is_mask = x == mask_id                                                # (B, L)
            logits = _guided_logits(model, x, context, mask_id, cfg_scale)        # (B, L, V)
            trace.nfe += 1                                                        # one call, even with CFG
            logits[..., mask_id] = float("-inf")
            _forbid(logits, no_eos, eos_id)
            cand = draw_candidates(filter_logits(logits, top_k, top_p), temperature, g)  # (B, L)
            if remasking == "low_confidence":                                      # the drawn token's p
                conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1).double()
            elif remasking == "entropy":                                           # -H(p): the position's
                conf = -position_entropy(logits)                                   # certainty (Dream)
            else:
                conf = torch.rand(x.shape, generator=g, dtype=torch.float64,
                                  device=g.device if g is not None else x.device).to(x.device)
            conf = torch.where(is_mask, conf, torch.full_like(conf, float("-inf")))
            conf[:, hi:] = float("-inf")                                          # later blocks wait
            commit = torch.zeros_like(is_mask)
            for r in range(batch_size):
                k = int(counts[r, i])
                if k:
                    commit[r, torch.topk(conf[r], k).indices] = True
            x = torch.where(commit, cand, x)
            _record(trace, x, commit, conf, is_mask, step)
    return (x, trace) if return_trace else x


@torch.no_grad()
def generate_ar(model, length: int, *, batch_size: int = 1, prompt=None, bos_id: int | None = None,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator=None, device=None, use_cache: bool = True, return_trace: bool = True):
    """Autoregressive sampling, one token per network call, with a KV cache (lessons 06 and 10, the
    baseline every speed comparison uses). The sequence starts from ``prompt`` (or [BOS])."""
    V = check_causal_model(model, length=length)
    check_positive_int("batch_size", batch_size)
    check_temperature(temperature)
    check_filters(top_k, top_p)
    check_bool("use_cache", use_cache)
    if use_cache and not hasattr(model, "new_cache"):
        raise ValueError("use_cache: needs a minidlm Model (model.new_cache); pass use_cache=False")
    device = _device_of(model, device)
    g = make_generator(generator)
    if prompt is None:
        if bos_id is None:
            raise ValueError("prompt: give a prompt or bos_id to start from")
        prompt = torch.full((batch_size, 1), check_int("bos_id", bos_id, minimum=0, below=V), dtype=torch.long)
    x = as_ids("prompt", prompt, device=device)
    x = x[None].expand(batch_size, -1).clone() if x.dim() == 1 else x.clone()
    if x.shape[0] != batch_size:
        raise ValueError(f"prompt: expected batch size {batch_size}, got {x.shape[0]}")
    if x.shape[1] >= length:
        raise ValueError(f"prompt: expected fewer than length={length} tokens, got {x.shape[1]}")
    check_ids("prompt", x, V)
    # The trace pads not-yet-written positions with -1 (an AR model has no [MASK]).
    P = x.shape[1]
    pad = lambda y: torch.cat([y.cpu(), torch.full((batch_size, length - y.shape[1]), -1)], 1)
    trace = Trace(states=[pad(x)], reveal_step=torch.zeros(batch_size, length, dtype=torch.long))
    trace._mask_id = -1
    trace.reveal_step[:, P:] = torch.arange(1, length - P + 1)
    cache = model.new_cache(batch_size, device=device) if use_cache else None
    feed = x
    while x.shape[1] < length:
        if use_cache:
            with pinned_sdpa(device):                                             # GPU trap 1
                logits = model(feed, cache=cache, is_causal=True)[:, -1].float()  # (B, V)
        else:
            logits = model(x, is_causal=True)[:, -1].float()
        trace.nfe += 1
        probs = torch.softmax(logits, -1)
        nxt = draw_candidates(filter_logits(logits, top_k, top_p), temperature, g)  # (B,)
        x = torch.cat([x, nxt[:, None]], 1)
        feed = nxt[:, None]
        trace.states.append(pad(x))
        conf = torch.full((batch_size, length), float("nan"))
        conf[:, x.shape[1] - 1] = probs.gather(-1, nxt[:, None]).squeeze(-1).float().cpu()
        trace.confidences.append(conf)
    return (x, trace) if return_trace else x


def _device_of(model, device):
    if device is not None:
        return torch.device(device)
    if isinstance(model, torch.nn.Module):
        p = next(iter(model.parameters()), None)
        if p is not None:
            return p.device
    return torch.device("cpu")


def _init_state(length, batch_size, mask_id, prompt, given, device, V=None):
    """The start state and the index where generation begins."""
    check_positive_int("batch_size", batch_size)
    if given is not None:
        check_tensor("given", given, ndim=2, dtype_kind="int")
        if prompt is not None:
            raise ValueError("prompt: give a prompt or a given start state, not both")
        if given.shape[1] != length or given.shape[0] == 0 or batch_size not in (1, given.shape[0]):
            raise ValueError(f"given: expected shape (B, length={length}) with B = batch_size={batch_size} (or "
                             f"batch_size=1), got {tuple(given.shape)}")
        check_ids("given", given, V)
        return given.clone().to(device=device, dtype=torch.long), 0
    x = _start(length, batch_size, mask_id, prompt, device, V)
    return x, (0 if prompt is None else torch.as_tensor(prompt).shape[-1])


def _new_trace(x, mask_id) -> Trace:
    tr = Trace(states=[x.cpu().clone()], reveal_step=torch.zeros_like(x, device="cpu"))
    tr._mask_id = mask_id
    tr.reveal_step[x.cpu() == mask_id] = -1
    return tr


def _length_step(model, x, context, mask_id, cfg_scale, eos_id, g, tr: Trace):
    """One network call that only decides where each row's text ends (``length.draw_end``):
    the drawn tail is filled with [EOS] and recorded as step 1. Returns the new state (B, L) and
    ``no_eos`` (B, L): the masked positions before the end, where later steps forbid [EOS] (the end
    is at k only if position k - 1 is not [EOS])."""
    from .length import draw_end

    is_mask = x == mask_id                                                     # (B, L)
    probs = torch.softmax(_guided_logits(model, x, context, mask_id, cfg_scale), -1)  # (B, L, V)
    check_int("eos_id", eos_id, minimum=0, below=probs.shape[-1])            # a plain callable's V
    tr.nfe += 1
    tail = draw_end(probs[..., eos_id], x, mask_id, g)                         # (B, L)
    x = torch.where(tail, torch.full_like(x, eos_id), x)
    _record(tr, x, tail, probs[..., eos_id], is_mask, 1)
    return x, is_mask & ~tail


def _forbid(logits: torch.Tensor, no_eos, eos_id) -> torch.Tensor:
    """Set the [EOS] logit to -inf where ``no_eos`` (B, L) is True (after a length draw)."""
    if no_eos is not None:
        logits[..., eos_id] = logits[..., eos_id].masked_fill(no_eos, float("-inf"))
    return logits


def _record(tr: Trace, x, commit, conf, is_mask, step):
    tr.states.append(x.cpu().clone())
    tr.reveal_step[commit.cpu()] = step
    tr.confidences.append(torch.where(is_mask, conf, torch.full_like(conf, float("nan"))).float().cpu())


@torch.no_grad()
def ancestral(model, length: int, steps: int, mask_id: int, *, schedule="loglinear", batch_size: int = 1,
              prompt=None, given: torch.Tensor | None = None, temperature: float = 1.0,
              top_k: int | None = None, top_p: float | None = None, generator=None, device=None,
              cache_no_change: bool = True, greedy_last_step: bool = False):
    """MDLM ancestral sampling (lesson 07): T steps from t = 1 to 0; at the step t -> s every masked
    position is revealed independently with probability (alpha_s - alpha_t)/(1 - alpha_t), its token
    drawn from x_theta. The number revealed per step is random: Binomial(#masked, (t - s)/t) for
    log-linear. With ``cache_no_change``, a step that revealed nothing reuses the last network output
    (the model is not time-conditioned, so its input and output are unchanged): fewer calls, same
    sample. Returns (tokens, Trace). steps may exceed the length, up to ``MAX_ANCESTRAL_STEPS``.

    greedy_last_step: at the last step (s = 0) every position still masked gets the argmax of
    x_theta instead of a sampled token (MDLM's ``noise_removal``). MDLM runs its T steps from 1 down
    to t = 1e-5, where almost nothing is left masked, then spends one extra network call on that
    argmax; here the grid ends at 0, so the last step already reveals everything and the option
    costs no extra call, but it decides every position still masked after step T - 1 (L / T of them
    on average for log-linear).
    Earlier steps draw the same noise, so they are unchanged for the same generator. Default off.
    """
    from .schedules import get_schedule

    V = _check_common(model, steps, temperature, mask_id, length, top_k, top_p)
    if steps > MAX_ANCESTRAL_STEPS:
        raise ValueError(f"steps: expected at most MAX_ANCESTRAL_STEPS={MAX_ANCESTRAL_STEPS}, got {steps}")
    check_bool("greedy_last_step", greedy_last_step)
    check_bool("cache_no_change", cache_no_change)
    sched = get_schedule(schedule)
    device = _device_of(model, device)
    g = make_generator(generator)
    x, _ = _init_state(length, batch_size, mask_id, prompt, given, device, V)
    tr = _new_trace(x, mask_id)
    logits, changed = None, True
    for i in range(steps, 0, -1):
        t, s = i / steps, (i - 1) / steps
        a_t, a_s = float(sched.alpha(t)), float(sched.alpha(s))
        p_reveal = 1.0 if s == 0 else (a_s - a_t) / (1 - a_t)
        is_mask = x == mask_id
        if logits is None or not cache_no_change or changed:
            logits = model(x).float()
            logits[..., mask_id] = float("-inf")
            tr.nfe += 1
        if s == 0 and greedy_last_step:
            cand = logits.argmax(-1)                                  # (B, L) noise removal: no sampling
        else:
            cand = draw_candidates(filter_logits(logits, top_k, top_p), temperature, g)    # (B, L)
        u = torch.rand(x.shape, generator=g, dtype=torch.float64,
                       device=g.device if g is not None else x.device).to(x.device)
        commit = is_mask & (u < p_reveal)
        changed = bool(commit.any())
        x = torch.where(commit, cand, x)
        conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)
        _record(tr, x, commit, conf, is_mask, steps - i + 1)
    return x, tr


# Confidence-threshold decoding (lesson 08) lives in adaptive.py and editing (lesson 11) in
# editing.py; both import this module, so their functions are re-exported here lazily (PEP 562),
# which lets either module be imported first.
_REEXPORTS = {"generate_adaptive": "adaptive", "edit": "editing", "least_confident_positions": "editing",
              "remdm_generate": "remask", "remasking_sigma": "remask"}


def __getattr__(name: str):
    if name in _REEXPORTS:
        import importlib  # noqa: PLC0415
        return getattr(importlib.import_module(f".{_REEXPORTS[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
