"""Uniform-state diffusion (lesson 15): UDLM (Schiff et al., ICLR 2025) and Duo (Sahoo et al., ICML 2025).

The forward process replaces a token by a uniformly random vocabulary token instead of [MASK]:

    q(x_t | x_0) = Cat(alpha_t * onehot(x_0) + (1 - alpha_t) / K),

with K the number of states (every id but [MASK], which this process never uses). A corrupted
token looks like any other, so the denoiser must decide *which* tokens are wrong as well as what
they should be, and the reverse process may change every position at every step: nothing is
ever final until t = 0. Writing xbar = K alpha_t x + (1 - alpha_t) (x a one-hot or a
probability vector over the K states), the posterior for s < t is

    q(x_s = j | x_t = i, x) = (alpha_{t|s} [i = j] + (1 - alpha_{t|s}) / K) * (alpha_s x_j + (1 - alpha_s) / K)
                              / (alpha_t x_i + (1 - alpha_t) / K),       alpha_{t|s} = alpha_t / alpha_s,

and the model plugs its prediction x_theta(x_t) in for x. Letting s -> t turns the sum of the
per-step KL divergences into UDLM's continuous-time NELBO, per position (i = x_t):

    alpha'_t / (K alpha_t) * [ K / xbar_i - K / xbar_theta,i
                               - sum_{j != i} (xbar_j / xbar_i) log(xbar_theta,i xbar_j / (xbar_theta,j xbar_i)) ]

which is >= 0 and is 0 exactly when x_theta = x. ``tests/unit/test_uniform.py`` checks it
against the T-step KL sum by exact enumeration, and checks that with the data distribution
itself as x_theta it integrates to that distribution's entropy.

Shapes: token ids (B, L), logits and probabilities (B, L, V), t per sequence (B,).
"""
from __future__ import annotations

import torch

from ._validate import check_int, check_tensor, make_generator
from .forward import _per_sequence, sample_times, uniform
from .losses import _counted, _reduce, _times, _check_batch
from .schedules import get_schedule


def n_states(vocab_size: int, mask_id: int | None) -> int:
    """K, the number of states of the uniform process: the vocabulary without [MASK]."""
    return vocab_size - (mask_id is not None)


def _state_ids(r: torch.Tensor, mask_id: int | None) -> torch.Tensor:
    """Map r in [0, K) to token ids, skipping ``mask_id``."""
    return r if mask_id is None else r + (r >= mask_id).long()


def corrupt_uniform(x0, alpha_t, vocab_size: int, generator=None, *, mask_id: int | None = None,
                    keep: torch.Tensor | None = None) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) of uniform-state diffusion (lesson 15): each token is kept with
    probability alpha_t and otherwise replaced by a uniform draw over the K states (the vocabulary
    without ``mask_id``), which may happen to be the token itself, so P(x_t = x_0) = alpha_t +
    (1 - alpha_t) / K. x0: (B, L); alpha_t: scalar or (B,); keep: (L,) or (B, L) bool, positions
    that stay clean (the [BOS]). Returns x_t, (B, L)."""
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    check_int("vocab_size", vocab_size, minimum=2)
    if mask_id is not None:
        check_int("mask_id", mask_id, minimum=0, below=vocab_size)
    B, L = x0.shape
    a = _per_sequence("alpha_t", alpha_t, B, x0.device)                       # (B, 1)
    g = make_generator(generator)
    noisy = uniform((B, L), g, x0.device) >= a                                  # (B, L): resampled
    r = torch.randint(n_states(vocab_size, mask_id), (B, L), generator=g,
                      device=g.device if g is not None else x0.device).to(x0.device)
    if keep is not None:
        check_tensor("keep", keep, dtype_kind="bool")
        if keep.shape[-1] != L or keep.dim() not in (1, 2):
            raise ValueError(f"keep: expected shape (L,) or (B, L) with L={L}, got {tuple(keep.shape)}")
        noisy &= ~keep.to(x0.device)
    return torch.where(noisy, _state_ids(r, mask_id), x0)


def _state_probs(name: str, x, V: int, mask_id: int | None, dtype=torch.float64) -> torch.Tensor:
    """x as probabilities (..., V) of ``dtype``: ids become one-hots; [MASK]'s entry must be 0."""
    if not torch.is_floating_point(x):
        x = torch.nn.functional.one_hot(x.long(), V)
    x = x.to(dtype)
    if x.shape[-1] != V:
        raise ValueError(f"{name}: expected {V} entries in the last dimension, got {x.shape[-1]}")
    if mask_id is not None and bool((x[..., mask_id] != 0).any()):
        raise ValueError(f"{name}: [MASK] (id {mask_id}) is not a state of the uniform process; its probability must be 0")
    return x


def uniform_marginal(x0, alpha_t, vocab_size: int, mask_id: int | None = None) -> torch.Tensor:
    """q(x_t | x_0) as probabilities (B, L, V), float64: alpha_t x + (1 - alpha_t) / K on the K
    states, 0 at [MASK]. x0: ids (B, L) or probabilities (B, L, V) (then the mixture)."""
    x = _state_probs("x0", x0, vocab_size, mask_id)
    a = _per_sequence("alpha_t", alpha_t, x.shape[0], x.device)[..., None]      # (B, 1, 1)
    K = n_states(vocab_size, mask_id)
    q = a * x + (1 - a) / K
    if mask_id is not None:
        q[..., mask_id] = 0
    return q


def uniform_posterior(xt, x0, alpha_t, alpha_s, mask_id: int | None = None,
                      vocab_size: int | None = None) -> torch.Tensor:
    """q(x_s | x_t, x_0) for s < t (lesson 15), float64 (B, L, V): proportional to
    q(x_t | x_s) q(x_s | x_0), with q(x_t = i | x_s = j) = alpha_{t|s} [i = j] + (1 - alpha_{t|s}) / K.
    x0: probabilities (B, L, V) such as the model's x_theta (the reverse step plugs its prediction
    in for x_0), or ids (B, L) with ``vocab_size``. alpha_s >= alpha_t; alpha_s = 1 is the last step."""
    check_tensor("xt", xt, ndim=2, dtype_kind="int")
    if not torch.is_floating_point(x0):
        if vocab_size is None:
            raise ValueError("vocab_size: required when x0 holds token ids (or pass x0 as probabilities (B, L, V))")
        check_int("vocab_size", vocab_size, minimum=2)
        check_tensor("x0", x0, ndim=2, dtype_kind="int")
        x0 = torch.nn.functional.one_hot(x0.long(), vocab_size).double()
    check_tensor("x0", x0, ndim=3)
    if x0.shape[:2] != xt.shape:
        raise ValueError(f"x0: expected shape (B, L, V) with (B, L) = {tuple(xt.shape)}, got {tuple(x0.shape)}")
    B = xt.shape[0]
    a_t = _per_sequence("alpha_t", alpha_t, B, xt.device)[..., None]            # (B, 1, 1)
    a_s = _per_sequence("alpha_s", alpha_s, B, xt.device)[..., None]
    if bool((a_s < a_t).any()):
        raise ValueError("alpha_s: expected alpha_s >= alpha_t (s earlier than t)")
    return _posterior(xt, x0, a_t, a_s, mask_id)


def _posterior(xt, x0, a_t, a_s, mask_id):
    x = _state_probs("x0", x0, x0.shape[-1], mask_id)                           # (B, L, V)
    V = x.shape[-1]
    K = n_states(V, mask_id)
    a_ts = torch.where(a_s > 0, a_t / a_s.clamp(min=1e-300), torch.ones_like(a_t))  # alpha_{t|s}
    onehot_t = torch.nn.functional.one_hot(xt.long(), V).double()              # (B, L, V)
    fwd = a_ts * onehot_t + (1 - a_ts) / K                                      # q(x_t | x_s = j)
    prior = a_s * x + (1 - a_s) / K                                             # q(x_s = j | x)
    post = fwd * prior
    if mask_id is not None:
        post[..., mask_id] = 0
    return post / post.sum(-1, keepdim=True)


def udlm_rates(xbar: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """xbar_j / xbar_i (B, L, V): the ratios in UDLM's NELBO (lesson 15). Up to the factor
    -alpha'_t / (K alpha_t) they are the rates of jumping from the state i = x_t to each j."""
    return xbar / xbar.gather(-1, i[..., None])


def udlm_integrand(x_theta, x0, xt, alpha, dalpha, mask_id: int | None = None) -> torch.Tensor:
    """UDLM's continuous-time NELBO integrand per position (B, L), float64 (lesson 15):

        alpha' / (K alpha) * [ K / xbar_i - K / xbar_theta,i
                               - sum_{j != i} (xbar_j / xbar_i) log(xbar_theta,i xbar_j / (xbar_theta,j xbar_i)) ],

    with xbar = K alpha onehot(x0) + (1 - alpha), xbar_theta = K alpha x_theta + (1 - alpha) and
    i = x_t. x_theta: (B, L, V) probabilities (0 at [MASK]); alpha, dalpha: (B,) alpha_t and its
    derivative. Always >= 0: it is a KL divergence between the true and the model's jump rates.
    Computed in float64, or in float32 when x_theta is float32 (training; the NELBO's terms are
    O(1) numbers, so float32 agrees to about 1e-5 relative, tested)."""
    dt = torch.float64 if x_theta.dtype == torch.float64 else torch.float32
    x_theta = _state_probs("x_theta", x_theta, x_theta.shape[-1], mask_id, dt)
    V = x_theta.shape[-1]
    K = n_states(V, mask_id)
    B = x_theta.shape[0]
    a = _per_sequence("alpha", alpha, B, x_theta.device).to(dt)[..., None]     # (B, 1, 1)
    da = torch.as_tensor(dalpha, device=x_theta.device).to(dt).reshape(-1, 1)  # (B, 1)
    x = torch.nn.functional.one_hot(x0.long(), V).to(dt)
    xbar = K * a * x + (1 - a)                                                  # (B, L, V)
    xbar_th = K * a * x_theta + (1 - a)
    i = xt.long()
    r = udlm_rates(xbar, i)                                                      # xbar_j / xbar_i
    log_ratio = (xbar_th.gather(-1, i[..., None]).log() - xbar_th.log()) + (xbar.log() - xbar.gather(-1, i[..., None]).log())
    others = torch.ones_like(xbar, dtype=torch.bool).scatter(-1, i[..., None], False)
    if mask_id is not None:
        others[..., mask_id] = False
    kl_sum = torch.where(others, r * log_ratio, torch.zeros_like(r)).sum(-1)  # (B, L)
    xi, xthi = xbar.gather(-1, i[..., None])[..., 0], xbar_th.gather(-1, i[..., None])[..., 0]
    # K / xbar_i - K / xbar_theta,i written as one fraction: no cancellation near alpha = 0
    diff = K * (K * a[..., 0] * (x_theta.gather(-1, i[..., None])[..., 0] - x.gather(-1, i[..., None])[..., 0])) / (xi * xthi)
    return da / (K * a[..., 0]) * (diff - kl_sum)


def udlm_nelbo(logits, x0, xt, t, mask_id: int | None, schedule="loglinear", reduction: str = "token",
               keep: torch.Tensor | None = None) -> torch.Tensor:
    """One-sample estimate of UDLM's continuous-time NELBO (lesson 15), nats: x_t drawn from the
    uniform process at times t (B,) of the same ``schedule``; x_theta = softmax(logits) with
    [MASK] excluded. "token" reduction: per token after the ``keep`` positions (the [BOS])."""
    sched = get_schedule(schedule)
    V = _check_batch(logits, x0, xt)
    t64 = _times("t", t, x0)
    if bool(((t64 <= 0) | (t64 >= 1)).any()):
        raise ValueError("t: expected times in (0, 1)")
    t64 = t64.expand(x0.shape[0]) if t64.dim() == 0 else t64
    lg = logits.float()
    if mask_id is not None:
        lg = lg.clone()
        lg[..., mask_id] = float("-inf")
    x_theta = torch.softmax(lg, -1)                                             # (B, L, V)
    per_pos = udlm_integrand(x_theta, x0, xt, sched.alpha(t64), sched.dalpha(t64), mask_id)
    if keep is not None:
        per_pos = torch.where(keep.to(per_pos.device).expand_as(per_pos), torch.zeros_like(per_pos), per_pos)
    return _reduce(per_pos.float(), _counted(x0, None, keep), reduction)


def udlm_loss(model, x0, mask_id: int, generator, schedule="loglinear", eps: float = 1e-3,
              rows: slice | None = None) -> torch.Tensor:
    """The uniform-state training loss of a clean batch x0 (B, L) (``train --objective udlm``,
    lesson 15): one antithetic time per row, every token but the [BOS] resampled uniformly with
    probability 1 - alpha(t), and UDLM's NELBO per token after the [BOS]. Times are kept below
    1 - eps as well as above eps (at alpha = 0 the weight's 1 / alpha is 0 / 0)."""
    sched = get_schedule(schedule)
    B, L = x0.shape
    t = sample_times(B, eps, generator=generator, device=x0.device).clamp(max=1 - eps)   # (B,)
    keep = torch.zeros(L, dtype=torch.bool, device=x0.device)
    keep[0] = True
    V = model.config.vocab_size
    xt = corrupt_uniform(x0, sched.alpha(t), V, generator, mask_id=mask_id, keep=keep)   # (B, L)
    if rows is not None:
        x0, xt, t = x0[rows], xt[rows], t[rows]
    return udlm_nelbo(model(xt), x0, xt, t, mask_id, sched, reduction="token", keep=keep)


# ---------------------------------------------------------------- sampling (lesson 15)
@torch.no_grad()
def uniform_generate(model, length: int, steps: int, mask_id: int | None, *, batch_size: int = 1, prompt=None,
                     schedule="loglinear", temperature: float = 1.0, generator=None, device=None,
                     greedy_last_step: bool = False):
    """Ancestral sampling of a uniform-state model (lesson 15). Start from uniformly random tokens
    (after the prompt); at each of the T steps t -> s ask the model for x_theta(x_t) and draw every
    position from q(x_s | x_t, x_theta): any token may change at any step, until the last step
    (s = 0) draws x_0. ``temperature`` sharpens x_theta. ``greedy_last_step``: the last step
    takes the most likely token. One network call per step. Returns (tokens (B, L), Trace) with
    ``trace.revises`` True: ``trace.reveal_step`` is each position's last change."""
    from .sampling import _check_common, _device_of, _new_trace

    V = _check_common(model, steps, temperature, 0 if mask_id is None else mask_id, length)
    if V is None:
        raise ValueError("model: expected a minidlm Model (its config gives the vocabulary size)")
    sched = get_schedule(schedule)
    device = _device_of(model, device)
    g = make_generator(generator)
    gdev = g.device if g is not None else device
    K = n_states(V, mask_id)
    x = _state_ids(torch.randint(K, (batch_size, length), generator=g, device=gdev), mask_id).to(device)
    P = 0
    if prompt is not None:
        prompt = torch.as_tensor(prompt, device=device).long().reshape(1, -1)                # (1, P)
        P = prompt.shape[1]
        if P >= length:
            raise ValueError(f"prompt: expected fewer than length={length} tokens, got {P}")
        x[:, :P] = prompt
    tr = _new_trace(x, -1)
    tr.revises = True
    for i in range(steps, 0, -1):
        a_t, a_s = float(sched.alpha(i / steps)), float(sched.alpha((i - 1) / steps))
        logits = model(x).float()                                                   # (B, L, V)
        tr.nfe += 1
        if mask_id is not None:
            logits[..., mask_id] = float("-inf")
        x_theta = torch.softmax(logits / temperature, -1)
        post = _posterior(x, x_theta, torch.full((batch_size, 1, 1), a_t, dtype=torch.float64, device=device),
                          torch.full((batch_size, 1, 1), a_s, dtype=torch.float64, device=device), mask_id)
        if i == 1 and greedy_last_step:
            new = post.argmax(-1)
        else:
            flat = post.reshape(-1, V).float().to(gdev)
            new = torch.multinomial(flat, 1, generator=g).reshape(batch_size, length).to(device)
        new[:, :P] = x[:, :P]
        tr.confidences.append(x_theta.gather(-1, new[..., None])[..., 0].cpu())
        tr.states.append(new.cpu().clone())
        x = new
    tr.reveal_step = tr.last_change(steps)
    return x, tr
