"""The forward (noising) process q of masked diffusion (lesson 02).

q(x_t | x_0) = Cat(alpha_t * onehot(x_0) + (1 - alpha_t) * onehot([MASK])), independently per
token: each token survives with probability alpha_t and becomes [MASK] otherwise.
"""
from __future__ import annotations

import torch

from ._validate import check_tensor, check_unit_interval, make_generator


def _per_sequence(name: str, a, B: int, device) -> torch.Tensor:
    """Turn a scalar, (B,) or (B, 1) value into a float64 (B, 1) tensor."""
    a = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=torch.float64)
    check_unit_interval(name, a)
    a = a.to(device=device, dtype=torch.float64)
    if a.dim() == 0:
        a = a.expand(B)
    a = a.reshape(-1)
    if a.numel() != B:
        raise ValueError(f"{name}: expected a scalar or one value per sequence (B={B}), got {a.numel()} values")
    return a[:, None]  # (B, 1)


def uniform(shape, generator, device) -> torch.Tensor:
    """U(0,1) float64 noise drawn with ``generator`` on its own device, then moved to ``device``
    (so a CPU generator gives the same numbers whatever device the data lives on)."""
    gen_device = generator.device if generator is not None else torch.device(device or "cpu")
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=gen_device).to(device)


def mask_tokens(x0, alpha_t, mask_id: int, generator=None, *, pad_id: int | None = None,
                keep: torch.Tensor | None = None) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0): replace each token by ``mask_id`` with probability 1 - alpha_t.

    x0: (B, L) int token ids; alpha_t: scalar or (B,) clean probability per sequence;
    pad_id: [PAD] positions are never masked; keep: optional (B, L) or (L,) bool, True where a
    token must stay clean (a prompt, [BOS]). Returns x_t, (B, L). Taught in lesson 02.
    """
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    if not isinstance(mask_id, int) or isinstance(mask_id, bool) or mask_id < 0:
        raise ValueError(f"mask_id: expected a non-negative int token id, got {mask_id!r}")
    B, L = x0.shape
    a = _per_sequence("alpha_t", alpha_t, B, x0.device)            # (B, 1)
    g = make_generator(generator)
    u = uniform((B, L), g, x0.device)
    masked = u >= a                                                  # P(masked) = 1 - alpha_t
    if pad_id is not None:
        masked &= x0 != pad_id
    if keep is not None:
        check_tensor("keep", keep, dtype_kind="bool")
        if keep.shape[-1] != L or keep.dim() not in (1, 2):
            raise ValueError(f"keep: expected shape (L,) or (B, L) with L={L}, got {tuple(keep.shape)}")
        masked &= ~keep.to(x0.device)
    return torch.where(masked, torch.full_like(x0, mask_id), x0)


def sample_times(batch_size: int, eps: float = 1e-3, antithetic: bool = True, generator=None,
                 device=None) -> torch.Tensor:
    """Draw t in [eps, 1) for a batch, shape (B,), float64. Lesson 02.

    Antithetic (low-discrepancy): one u ~ U(0,1) and t_i = ((u + i/B) mod 1)(1 - eps) + eps, so
    the batch covers [eps, 1) evenly and the loss estimate has lower variance.

    The eps convention (lesson 02): minidlm masks with probability 1 - alpha(t) at t in [eps, 1),
    like LLaDA (p_mask = (1 - eps) t + eps); MDLM instead draws t in [eps, 1] and masks with
    probability (1 - eps) t. The times stay float64 and strictly below 1 (at most 1 - 2^-52): in
    float32 about one draw in 3e7 rounds to exactly 1.0, where sigma(1) = -log alpha(1) is infinite
    (score entropy, lesson 12) and alpha(1) = 0 leaves nothing clean.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    if not (0 <= eps < 1):
        raise ValueError(f"eps: expected 0 <= eps < 1, got {eps}")
    g = make_generator(generator)
    if antithetic:
        u = uniform((1,), g, "cpu")
        t = torch.remainder(u + torch.arange(batch_size, dtype=torch.float64) / batch_size, 1.0)
    else:
        t = uniform((batch_size,), g, "cpu")
    t = (t * (1 - eps) + eps).clamp(max=T_MAX)                       # (B,) float64 in [eps, 1)
    return t.to(device or "cpu")


T_MAX = 1.0 - 2.0 ** -52   # the largest time sample_times returns: alpha(t) > 0, sigma(t) finite


def reveal_probability(alpha_t, alpha_s) -> torch.Tensor:
    """Probability that a token masked at time t is revealed by time s < t:
    (alpha_s - alpha_t) / (1 - alpha_t); (t - s)/t for log-linear. Lesson 02."""
    alpha_t = torch.as_tensor(alpha_t, dtype=torch.float64)
    alpha_s = torch.as_tensor(alpha_s, dtype=torch.float64)
    check_unit_interval("alpha_t", alpha_t, open_high=True)
    check_unit_interval("alpha_s", alpha_s)
    if (alpha_s < alpha_t).any():
        raise ValueError("alpha_s: expected alpha_s >= alpha_t (s is earlier, less noisy, than t)")
    return (alpha_s - alpha_t) / (1 - alpha_t)


def posterior_probs(xt, x0, alpha_t, alpha_s, mask_id: int, vocab_size: int) -> torch.Tensor:
    """The exact posterior q(x_s | x_t, x_0) as probabilities, shape (B, L, V).

    A clean token stays: onehot(x_t). A masked token becomes the true token with probability
    (alpha_s - alpha_t)/(1 - alpha_t) and stays [MASK] otherwise. Lesson 02.
    """
    check_tensor("xt", xt, ndim=2, dtype_kind="int")
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    if xt.shape != x0.shape:
        raise ValueError(f"xt, x0: expected the same shape, got {tuple(xt.shape)} and {tuple(x0.shape)}")
    B, L = xt.shape
    a_t = _per_sequence("alpha_t", alpha_t, B, xt.device)
    a_s = _per_sequence("alpha_s", alpha_s, B, xt.device)
    p_reveal = reveal_probability(a_t, a_s)                          # (B, 1)
    probs = torch.nn.functional.one_hot(xt, vocab_size).double()    # (B, L, V): clean tokens stay
    is_mask = (xt == mask_id)[..., None]                              # (B, L, 1)
    reveal = torch.nn.functional.one_hot(x0, vocab_size).double() * p_reveal[..., None]
    stay = torch.nn.functional.one_hot(torch.full_like(xt, mask_id), vocab_size).double() * (1 - p_reveal[..., None])
    return torch.where(is_mask, reveal + stay, probs)


def posterior_sample(xt, x0, alpha_t, alpha_s, mask_id: int, generator=None) -> torch.Tensor:
    """Sample x_s ~ q(x_s | x_t, x_0): each [MASK] in x_t is revealed (set to x_0) with probability
    (alpha_s - alpha_t)/(1 - alpha_t); clean tokens never change. Returns (B, L). Lesson 02."""
    check_tensor("xt", xt, ndim=2, dtype_kind="int")
    check_tensor("x0", x0, ndim=2, dtype_kind="int")
    if xt.shape != x0.shape:
        raise ValueError(f"xt, x0: expected the same shape, got {tuple(xt.shape)} and {tuple(x0.shape)}")
    B, L = xt.shape
    p = reveal_probability(_per_sequence("alpha_t", alpha_t, B, xt.device),
                           _per_sequence("alpha_s", alpha_s, B, xt.device))  # (B, 1)
    g = make_generator(generator)
    u = uniform((B, L), g, xt.device)
    reveal = (xt == mask_id) & (u < p)
    return torch.where(reveal, x0, xt)


def sample_discrete_times(batch_size: int, T: int, generator=None, device=None):
    """For the T-step NELBO: draw i ~ U{1..T} per sequence and return (t, s) = (i/T, (i-1)/T),
    each (B,) float64. Lesson 05."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T: expected an int >= 1, got {T!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    g = make_generator(generator)
    i = torch.randint(1, T + 1, (batch_size,), generator=g).double()
    return (i / T).to(device or "cpu"), ((i - 1) / T).to(device or "cpu")
