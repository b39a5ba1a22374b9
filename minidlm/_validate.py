"""Input checks shared by every module: each raises a ValueError that names the
argument and says what was expected (DESIGN.md: never an opaque index error)."""
from __future__ import annotations

import torch


def check_tensor(name: str, x, *, ndim: int | None = None, dtype_kind: str | None = None) -> torch.Tensor:
    """Check that ``x`` is a tensor with ``ndim`` dims and a dtype of kind
    ``'int'`` (integer token ids), ``'float'`` or ``'bool'``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor, got shape {tuple(x.shape)}")
    if dtype_kind == "int" and (x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool):
        raise ValueError(f"{name}: expected an integer tensor of token ids, got dtype {x.dtype}")
    if dtype_kind == "float" and not x.dtype.is_floating_point:
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if dtype_kind == "bool" and x.dtype != torch.bool:
        raise ValueError(f"{name}: expected a boolean tensor, got dtype {x.dtype}")
    return x


def check_unit_interval(name: str, x, *, open_low: bool = False, open_high: bool = False):
    """Check that a float or tensor lies in [0, 1] (optionally open at either end)."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float64)
    if t.dtype == torch.bool or not (t.dtype.is_floating_point or t.dtype in (torch.int64, torch.int32)):
        raise ValueError(f"{name}: expected a number or float tensor in [0, 1], got dtype {t.dtype}")
    if t.numel() == 0:
        return x
    lo, hi = t.min().item(), t.max().item()
    bad_lo = lo <= 0 if open_low else lo < 0
    bad_hi = hi >= 1 if open_high else hi > 1
    if bad_lo or bad_hi or t.isnan().any():
        lb = "(" if open_low else "["
        rb = ")" if open_high else "]"
        raise ValueError(f"{name}: expected values in {lb}0, 1{rb}, got min {lo:.4g}, max {hi:.4g}")
    return x


def check_positive_int(name: str, x, *, minimum: int = 1) -> int:
    """Check that ``x`` is an int >= ``minimum``."""
    if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x!r}")
    return x


def check_choice(name: str, x, choices) -> str:
    """Check that ``x`` is one of ``choices``."""
    if x not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {x!r}")
    return x


def make_generator(seed_or_gen, device=None) -> torch.Generator | None:
    """Accept a ``torch.Generator``, an int seed, or None (global RNG)."""
    if seed_or_gen is None or isinstance(seed_or_gen, torch.Generator):
        return seed_or_gen
    if isinstance(seed_or_gen, int) and not isinstance(seed_or_gen, bool):
        g = torch.Generator(device=device if device is not None else "cpu")
        g.manual_seed(seed_or_gen)
        return g
    raise ValueError(f"generator: expected a torch.Generator, an int seed or None, got {type(seed_or_gen).__name__}")
