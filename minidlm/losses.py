"""Losses: entropy, cross-entropy and KL (lesson 03), the AR loss (lesson 06), the MDLM NELBO in
continuous and T-step form and the LLaDA loss (lesson 05).

Shapes: logits (B, L, V), token ids (B, L), t per sequence (B,). Everything is in nats unless
``base=2`` asks for bits. Reductions: ``"none"`` (B, L) per position, ``"sequence"`` (B,) summed
over each sequence, ``"token"`` a scalar: total over the batch / number of counted tokens.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._validate import check_choice, check_int, check_positive_int, check_tensor, ids_check, refuse, unit_check
from .schedules import get_schedule

REDUCTIONS = ("none", "sequence", "token")


# ---------------------------------------------------------------- distributions (lesson 03)
def _probs(name: str, p, dim: int) -> torch.Tensor:
    p = p if isinstance(p, torch.Tensor) else torch.as_tensor(p, dtype=torch.float64)
    if not p.dtype.is_floating_point:
        p = p.double()
    if p.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty probability vector")
    if (p < 0).any() or p.isnan().any():
        raise ValueError(f"{name}: expected non-negative probabilities")
    total = p.sum(dim)
    if not torch.allclose(total, torch.ones_like(total), atol=1e-4):
        raise ValueError(f"{name}: expected probabilities summing to 1 along dim {dim}, got sums {total.flatten()[:4].tolist()}")
    return p


def _in_base(x: torch.Tensor, base) -> torch.Tensor:
    if base is not None and (isinstance(base, bool) or not isinstance(base, (int, float))
                             or not math.isfinite(base) or base <= 0 or base == 1):
        raise ValueError(f"base: expected None (nats) or a number > 0 other than 1 (2 = bits), got {base!r}")
    return x if base is None else x / math.log(base)


def entropy(p, base: float | None = None, dim: int = -1) -> torch.Tensor:
    """H(p) = -sum_k p_k log p_k (0 log 0 = 0). ``base=2`` gives bits. Lesson 03."""
    p = _probs("p", p, dim)
    return _in_base(-torch.special.xlogy(p, p).sum(dim), base)


def cross_entropy(p, q, base: float | None = None, dim: int = -1) -> torch.Tensor:
    """H(p, q) = -sum_k p_k log q_k: the mean code length for p with a code built for q. Lesson 03."""
    p, q = _probs("p", p, dim), _probs("q", q, dim)
    if p.shape != q.shape:
        raise ValueError(f"p, q: expected the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    return _in_base(-torch.special.xlogy(p, q).sum(dim), base)


def kl_divergence(p, q, base: float | None = None, dim: int = -1) -> torch.Tensor:
    """D_KL(p || q) = H(p, q) - H(p) >= 0; equals H(p, q) when p is one-hot. Lesson 03."""
    return cross_entropy(p, q, base, dim) - entropy(p, base, dim)


# ---------------------------------------------------------------- per-position pieces
def token_cross_entropy(logits, targets) -> torch.Tensor:
    """-log softmax(logits)[target] at every position, float32, shape (B, L); targets in [0, V)."""
    V = _check_batch(logits, targets, name="targets")
    refuse(ids_check("targets", targets, V))
    return _token_ce(logits, targets)


def _check_batch(logits, x0, xt=None, *, name: str = "x0") -> int:
    """logits (B, L, V) float, x0 (and xt) (B, L) int ids; returns V (no value checks: no sync)."""
    check_tensor("logits", logits, ndim=3, dtype_kind="float")
    check_tensor(name, x0, ndim=2, dtype_kind="int")
    if logits.shape[:2] != x0.shape:
        raise ValueError(f"logits, {name}: expected logits (B, L, V) to match {name} (B, L), got "
                         f"{tuple(logits.shape)} and {tuple(x0.shape)}")
    if xt is not None:
        check_tensor("xt", xt, ndim=2, dtype_kind="int")
        if xt.shape != x0.shape:
            raise ValueError(f"xt, {name}: expected the same shape, got {tuple(xt.shape)} and {tuple(x0.shape)}")
    return logits.shape[-1]


def _clean_check(name: str, x0: torch.Tensor, mask_id: int):
    """A ``refuse`` pair: x0 holds no [MASK] (its target has probability 0 under SUBS: an infinite loss)."""
    return (x0 == mask_id).any(), lambda: (f"{name}: expected clean tokens, found the [MASK] id {mask_id} "
                                           "(the model never predicts it: the loss would be infinite)")


def _token_ce(logits, targets) -> torch.Tensor:
    B, L, V = logits.shape
    ce = F.cross_entropy(logits.float().reshape(B * L, V), targets.reshape(B * L), reduction="none")
    return ce.view(B, L)  # (B, L)


def subs_logits(logits, mask_id: int) -> torch.Tensor:
    """SUBS parameterization (MDLM): the model never predicts [MASK]: its logit is -inf."""
    check_tensor("logits", logits, dtype_kind="float")
    check_int("mask_id", mask_id, minimum=0, below=logits.shape[-1])
    out = logits.clone()
    out[..., mask_id] = float("-inf")
    return out


def _reduce(per_pos: torch.Tensor, counted: torch.Tensor, reduction: str) -> torch.Tensor:
    check_choice("reduction", reduction, REDUCTIONS)
    if reduction == "none":
        return per_pos                                   # (B, L)
    if reduction == "sequence":
        return per_pos.sum(1)                            # (B,)
    return per_pos.sum() / counted.sum().clamp(min=1)    # scalar, per counted token


def _counted(x0: torch.Tensor, pad_id: int | None, keep: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L) bool: the positions a per-token loss counts. [PAD] and ``keep`` positions (never
    masked, such as the [BOS] at 0) cost nothing and are not counted: a per-token NELBO is per
    token the model has to produce."""
    counted = torch.ones_like(x0, dtype=torch.bool) if pad_id is None else x0 != pad_id
    if keep is not None:
        check_tensor("keep", keep, dtype_kind="bool")
        if keep.dim() not in (1, 2) or keep.shape[-1] != x0.shape[1] or (keep.dim() == 2 and keep.shape[0] != x0.shape[0]):
            raise ValueError(f"keep: expected shape (L,) or (B, L) with B, L = {tuple(x0.shape)}, got {tuple(keep.shape)}")
        counted = counted & ~keep.to(x0.device)
    return counted


def masked_cross_entropy(logits, x0, xt, mask_id: int) -> torch.Tensor:
    """-log x_theta(x_t)[x0] at masked positions of x_t, 0 at clean ones (they are copied
    through under SUBS and cost nothing). Shape (B, L). x0 ids in [0, V) and never [MASK]."""
    _check_values(logits, x0, xt, mask_id)
    return _masked_ce(logits, x0, xt, mask_id)


def _check_values(logits, x0, xt, mask_id, *more) -> int:
    """Shapes, mask_id, x0 and xt ids in range, x0 clean, and the ``refuse`` pairs ``more``: one sync."""
    V = _check_batch(logits, x0, xt)
    check_int("mask_id", mask_id, minimum=0, below=V)
    refuse(*more, ids_check("x0", x0, V), ids_check("xt", xt, V), _clean_check("x0", x0, mask_id))
    return V


def _masked_ce(logits, x0, xt, mask_id) -> torch.Tensor:
    is_mask = xt == mask_id
    ce = _token_ce(subs_logits(logits, mask_id), x0)
    return torch.where(is_mask, ce, torch.zeros_like(ce))


def _per_seq_weight(name, w, B, device) -> torch.Tensor:
    w = torch.as_tensor(w, dtype=torch.float32, device=device)
    if w.dim() == 0:
        w = w.expand(B)
    if w.numel() != B:
        raise ValueError(f"{name}: expected a scalar or one value per sequence (B={B}), got {w.numel()}")
    return w.reshape(B, 1).float()


# ---------------------------------------------------------------- AR (lesson 06)
def ar_loss(logits, x0, reduction: str = "token", ignore_id: int | None = None) -> torch.Tensor:
    """Next-token cross-entropy: logits at position i predict x0[i + 1].
    With reduction "none" the result is (B, L - 1). ``ignore_id`` targets cost 0 and are not counted."""
    V = _check_batch(logits, x0)
    check_choice("reduction", reduction, REDUCTIONS)
    if x0.shape[1] < 2:
        raise ValueError(f"x0: expected at least 2 tokens per row (each predicts the next), got shape "
                         f"{tuple(x0.shape)}")
    if ignore_id is not None:
        check_int("ignore_id", ignore_id)
    counted = _counted(x0[:, 1:], ignore_id)
    targets = x0[:, 1:].masked_fill(~counted, 0)           # (B, L-1): ignored ids may lie outside [0, V)
    refuse(ids_check("x0", targets, V))
    ce = _token_ce(logits[:, :-1], targets)               # (B, L-1)
    return _reduce(torch.where(counted, ce, torch.zeros_like(ce)), counted, reduction)


# ---------------------------------------------------------------- the NELBO (lesson 05)
def mdlm_nelbo(logits, x0, xt, t, mask_id: int, schedule="loglinear", reduction: str = "token",
               pad_id: int | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
    """One-sample estimate of MDLM's continuous-time NELBO:

        L = E_t E_{x_t ~ q} [ w(t) * sum_{l : x_t^l = [MASK]} -log x_theta^l(x_t)[x0^l] ],
        w(t) = -alpha'(t) / (1 - alpha(t))   (= 1/t for log-linear).

    t: (B,) times at which x_t was drawn, with x_t masked at rate 1 - alpha(t) of the SAME
    schedule (the weight and the masking must agree, or the estimate is no bound). "token"
    reduction divides by the counted tokens: not [PAD] (``pad_id``) and not ``keep`` ((L,) or (B, L)
    bool, positions that are never masked, e.g. [BOS]), giving a bound on the per-token negative
    log-likelihood of the tokens the model produces; exp of it bounds perplexity. t in (0, 1].
    """
    check_choice("reduction", reduction, REDUCTIONS)
    sched = get_schedule(schedule)
    t64 = _times("t", t, x0)
    _check_values(logits, x0, xt, mask_id, unit_check("t", t64, open_low=True))
    w = _per_seq_weight("t", sched.weight(t64), x0.shape[0], logits.device)
    per_pos = w * _masked_ce(logits, x0, xt, mask_id)   # (B, L)
    return _reduce(per_pos, _counted(x0, pad_id, keep), reduction)


def discrete_nelbo(logits, x0, xt, t, s, T: int, mask_id: int, schedule="loglinear",
                   reduction: str = "token", pad_id: int | None = None,
                   keep: torch.Tensor | None = None) -> torch.Tensor:
    """One-sample estimate of the T-step NELBO (diffusion term; the prior and reconstruction
    terms vanish for masking with alpha(0) = 1, alpha(1) = 0):

        L_T = sum_{i=1}^{T} E_{x_t(i)} [ (alpha_s - alpha_t)/(1 - alpha_t) * sum_masked -log x_theta(x_t)[x0] ],
        t(i) = i/T, s = (i-1)/T.

    Drawing one step i ~ U{1..T} per sequence (``forward.sample_discrete_times``) and multiplying by
    T makes it unbiased. L_T >= the continuous NELBO, and decreases towards it as T grows.
    t in (0, 1], s in [0, 1) with s < t.
    """
    check_positive_int("T", T)
    check_choice("reduction", reduction, REDUCTIONS)
    sched = get_schedule(schedule)
    t64, s64 = _times("t", t, x0), _times("s", s, x0)                     # each () or (B,): they broadcast
    _check_values(logits, x0, xt, mask_id, unit_check("t", t64, open_low=True), unit_check("s", s64, open_high=True),
                  ((s64 >= t64).any(), lambda: "s: expected s < t (the step goes from t back to s)"))
    a_t, a_s = sched.alpha(t64), sched.alpha(s64)
    w = _per_seq_weight("t", T * (a_s - a_t) / (1 - a_t), x0.shape[0], logits.device)
    per_pos = w * _masked_ce(logits, x0, xt, mask_id)
    return _reduce(per_pos, _counted(x0, pad_id, keep), reduction)


def llada_loss(logits, x0, xt, p_mask, mask_id: int) -> torch.Tensor:
    """LLaDA's pretraining loss: sum over masked tokens of CE / p_mask, divided by B * L (all
    tokens, not the masked count).

    Exact relation (tested): with the log-linear schedule alpha_t = 1 - t the masking probability
    is p_mask = t and the NELBO weight is 1/t, so for the same (x0, x_t, t)

        llada_loss = mdlm_nelbo(..., reduction="token")  (no PAD),

    i.e. LLaDA's loss is MDLM's per-token NELBO estimate: the same objective under another name.
    """
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    B, L = x0.shape
    p = _per_seq_weight("p_mask", p_mask, B, logits.device)
    _check_values(logits, x0, xt, mask_id, unit_check("p_mask", p, open_low=True))
    return (_masked_ce(logits, x0, xt, mask_id) / p).sum() / (B * L)


def _times(name: str, t, x0) -> torch.Tensor:
    """t as float64: a scalar or one value per sequence of x0 (B, L)."""
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    try:
        if isinstance(t, (bool, str)) or t is None:
            raise TypeError(type(t).__name__)
        t64 = torch.as_tensor(t, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}: expected a number or a (B,) float tensor, got {t!r}") from None
    if t64.dim() > 1 or (t64.dim() == 1 and t64.numel() != x0.shape[0]):
        raise ValueError(f"{name}: expected a scalar or one value per sequence (B={x0.shape[0]}), got shape "
                         f"{tuple(t64.shape)}")
    return t64


def perplexity(nll_per_token) -> torch.Tensor:
    """exp(NLL per token in nats). Applied to a NELBO it is an upper bound on perplexity."""
    return torch.exp(torch.as_tensor(nll_per_token, dtype=torch.float64))


def bits_per_token(nll_per_token) -> torch.Tensor:
    """Convert nats per token to bits per token."""
    return torch.as_tensor(nll_per_token, dtype=torch.float64) / math.log(2)


# ---------------------------------------------------------------- score entropy (lesson 12)
def score_entropy(log_score, x0, xt, sigma, mask_id: int, dsigma=None, reduction: str = "none") -> torch.Tensor:
    """Score entropy (SEDD; Lou et al. 2024) for the absorbing ([MASK]) process. Lesson 12.

    The model outputs log s_theta(x_t)_y, a log RATIO s(y) ~ p_t(y) / p_t(x_t) instead of a
    probability. With total noise sigma (alpha = e^{-sigma}), at a masked position whose clean token
    is x0 the true ratios are s(x0) = a = 1 / (e^sigma - 1) and s(y) = 0 for every other y. The loss

        l = sum_{y != MASK} s(y) - a log s(x0) + K(a),      K(a) = a (log a - 1),

    is >= 0 and is 0 exactly at the true ratios (it is a Bregman divergence of x log x); clean
    positions cost 0. ``dsigma`` (scalar or (B,)) multiplies each sequence's loss, as in the
    continuous-time objective int dsigma/dt * l dt.

    log_score: (B, L, V) float; x0, xt: (B, L) int; sigma: scalar or (B,) > 0.
    Reductions as elsewhere in this module: "none" (B, L), "sequence" (B,), "token" (sum / B L).
    """
    check_tensor("log_score", log_score, ndim=3, dtype_kind="float")
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    check_tensor("xt", xt, ndim=2, dtype_kind="int")
    B, L, V = log_score.shape
    if x0.shape != (B, L) or xt.shape != (B, L):
        raise ValueError(f"x0, xt: expected shape ({B}, {L}) to match log_score (B, L, V), got "
                         f"{tuple(x0.shape)} and {tuple(xt.shape)}")
    check_int("mask_id", mask_id, minimum=0, below=V)
    check_choice("reduction", reduction, REDUCTIONS)
    ls = log_score if log_score.dtype == torch.float64 else log_score.float()   # float32 at least
    sig = torch.as_tensor(sigma, dtype=torch.float64, device=ls.device)
    sig = sig.expand(B) if sig.dim() == 0 else sig.reshape(-1)
    if sig.numel() != B:
        raise ValueError(f"sigma: expected a scalar or one value per sequence (B={B}), got {sig.numel()}")
    refuse((((sig <= 0) | sig.isnan()).any(),
            lambda: "sigma: expected total noise > 0 (the ratio 1/(e^sigma - 1) is infinite at 0)"),
           ids_check("x0", x0, V), ids_check("xt", xt, V), _clean_check("x0", x0, mask_id))
    a = (1.0 / torch.expm1(sig)).to(ls.dtype)[:, None]                         # (B, 1) true ratio at x0
    others = torch.ones(V, dtype=torch.bool, device=ls.device)
    others[mask_id] = False                                                    # sum over y != MASK
    positive = torch.where(others, ls.exp(), torch.zeros((), device=ls.device)).sum(-1)  # (B, L)
    negative = a * ls.gather(-1, x0[..., None]).squeeze(-1)                   # (B, L)
    const = a * (torch.log(a) - 1)                                             # K(a), (B, 1)
    is_mask = xt == mask_id
    per_pos = torch.where(is_mask, positive - negative + const, torch.zeros_like(positive))
    if dsigma is not None:
        per_pos = per_pos * _per_seq_weight("dsigma", dsigma, B, ls.device).to(ls.dtype)
    return _reduce(per_pos, torch.ones_like(is_mask), reduction)
