"""Input checks shared by every module: each raises a ValueError that names the
argument and says what was expected (DESIGN.md: never an opaque index error)."""
from __future__ import annotations

import math
import numbers

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


# ---------------------------------------------------------------- numbers, flags, token ids
def compiling() -> bool:
    """True while torch.compile traces us: skip value checks that would break the graph."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def check_int(name: str, x, *, minimum: int | None = None, below: int | None = None) -> int:
    """An integer (Python or NumPy, not bool) with minimum <= x < below; returned as int."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or \
            (minimum is not None and x < minimum) or (below is not None and x >= below):
        lo = "" if minimum is None else f" >= {minimum}"
        hi = "" if below is None else f" and < {below}"
        raise ValueError(f"{name}: expected an integer{lo}{hi}, got {x!r}")
    return int(x)


def check_bool(name: str, x) -> bool:
    if not isinstance(x, bool):
        raise ValueError(f"{name}: expected True or False, got {x!r}")
    return x


def check_temperature(temperature) -> float:
    """A finite number >= 0; 0 means greedy (argmax). NaN gave an empty story, inf a story of [MASK]."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
            or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature: expected a finite number >= 0 (0 = greedy), got {temperature!r}")
    return float(temperature)


def check_cfg_scale(cfg_scale) -> float:
    if isinstance(cfg_scale, bool) or not isinstance(cfg_scale, numbers.Real) \
            or not math.isfinite(cfg_scale) or cfg_scale < 0:
        raise ValueError(f"cfg_scale: expected a finite number >= 0 (0 = no guidance), got {cfg_scale!r}")
    return float(cfg_scale)


def check_eos_id(eos_id, vocab_size: int | None, mask_id: int) -> None:
    """None, or an [EOS] id in [0, vocab_size) other than the [MASK] id."""
    if eos_id is not None:
        check_int("eos_id", eos_id, minimum=0, below=vocab_size)
        if eos_id == mask_id:
            raise ValueError(f"eos_id: expected the [EOS] id, got the [MASK] id {mask_id}")


def check_filters(top_k, top_p) -> None:
    """top_k: None or an int >= 1; top_p: None or a number in (0, 1]."""
    if top_k is not None:
        check_positive_int("top_k", top_k)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p: expected None or a number in (0, 1], got {top_p!r}")


def flags(*conds: torch.Tensor) -> list[bool]:
    """Several 0-d bool tensors read with ONE host sync (cheap checks on a GPU)."""
    if not conds:
        return []
    dev = next((c.device for c in conds if c.device.type != "cpu"), conds[0].device)
    return torch.stack([c.reshape(()).to(dev) for c in conds]).tolist()


def id_range_error(name: str, x: torch.Tensor, vocab_size: int | None) -> ValueError:
    hi = "" if vocab_size is None else f", vocab_size={vocab_size}"
    return ValueError(f"{name}: expected token ids in [0{hi}), got min {x.min().item()}, max {x.max().item()}")


def check_ids(name: str, x: torch.Tensor, vocab_size: int | None = None, *, mask_id: int | None = None) -> None:
    """Token ids of ``x`` in [0, vocab_size) (>= 0 when vocab_size is None) and, with ``mask_id``,
    none equal to it; one host sync."""
    if x.numel() == 0 or compiling():
        return
    out = (x < 0) if vocab_size is None else (x < 0) | (x >= vocab_size)
    conds = [out.any()] + ([(x == mask_id).any()] if mask_id is not None else [])
    bad = flags(*conds)
    if bad[0]:
        raise id_range_error(name, x, vocab_size)
    if len(bad) > 1 and bad[1]:
        raise ValueError(f"{name}: expected no [MASK] (mask_id={mask_id}) among these tokens")


# ---------------------------------------------------------------- models
def _model_config(model):
    """The minidlm ``ModelConfig`` of ``model`` (or of a wrapper exposing ``.config``), else None."""
    cfg = getattr(model, "config", None)
    if cfg is None or not all(hasattr(cfg, a) for a in ("mask_id", "vocab_size", "max_len")):
        return None
    return cfg


def check_denoiser(model, mask_id, *, length: int | None = None, name: str = "model") -> int | None:
    """The model of a diffusion sampler: callable; a minidlm model must be a denoiser (its
    ``config.mask_id`` set: not a causal AR model) and ``mask_id`` must be its ``config.mask_id``;
    ``length`` at most its ``max_len``. A plain callable (a toy denoiser) is only checked for being
    callable. Returns the vocabulary size (None when unknown)."""
    if not callable(model):
        raise ValueError(f"{name}: expected a callable returning logits (B, L, V), got {type(model).__name__}")
    cfg = _model_config(model)
    if cfg is not None and cfg.mask_id is None:
        raise ValueError(f"{name}: a causal AR model (config.mask_id is None) cannot fill [MASK]s; sample it "
                         "with generate_ar, or pass a diffusion model (built with mask_id=...)")
    check_int("mask_id", mask_id, minimum=0, below=None if cfg is None else cfg.vocab_size)
    if cfg is not None and mask_id != cfg.mask_id:
        raise ValueError(f"mask_id: expected the model's config.mask_id={cfg.mask_id}, got {mask_id} "
                         "(a tokenizer that does not match the model?)")
    _check_length(model, cfg, length, name)
    return None if cfg is None else cfg.vocab_size


def check_causal_model(model, *, length: int | None = None, name: str = "model") -> int | None:
    """The model of an autoregressive sampler: callable; a minidlm model must be causal (no
    ``config.mask_id``). Returns the vocabulary size (None when unknown)."""
    if not callable(model):
        raise ValueError(f"{name}: expected a callable returning logits (B, L, V), got {type(model).__name__}")
    cfg = _model_config(model)
    if cfg is not None and cfg.mask_id is not None:
        raise ValueError(f"{name}: a bidirectional diffusion model (config.mask_id={cfg.mask_id}) is not an "
                         "autoregressive model; sample it with generate, ancestral or generate_adaptive")
    _check_length(model, cfg, length, name)
    return None if cfg is None else cfg.vocab_size


def _check_length(model, cfg, length, name):
    if length is None:
        return
    check_positive_int("length", length)
    if cfg is not None and length > cfg.max_len:
        raise ValueError(f"length: expected at most the {name}'s max_len={cfg.max_len}, got {length}")


def as_ids(name: str, x, *, ndim: tuple[int, ...] = (1, 2), device=None) -> torch.Tensor:
    """Token ids given as a tensor or a (nested) list of ints, as an int64 tensor; refuses floats
    and bools (a silent ``long`` cast would truncate them)."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{name}: expected token ids (a tensor or a list of ints), got {type(x).__name__} "
                             f"({e})") from None
    check_tensor(name, x, dtype_kind="int")
    if x.dim() not in ndim:
        raise ValueError(f"{name}: expected a {' or '.join(f'{n}-D' for n in ndim)} tensor of token ids, "
                         f"got shape {tuple(x.shape)}")
    return x.to(device=device, dtype=torch.long)


def refuse(*checks) -> None:
    """checks: pairs (bad, message) of a 0-d bool tensor and a callable returning the message; raises
    the first bad one as a ValueError. Every flag is read with ONE host sync (none while compiling)."""
    if not checks or compiling():
        return
    for (_, message), bad in zip(checks, flags(*(b for b, _ in checks))):
        if bad:
            raise ValueError(message())


def ids_check(name: str, x: torch.Tensor, vocab_size: int):
    """A ``refuse`` pair: the ids of ``x`` lie in [0, vocab_size)."""
    return ((x < 0) | (x >= vocab_size)).any(), lambda: id_range_error(name, x, vocab_size).args[0]


def unit_check(name: str, t: torch.Tensor, *, open_low: bool = False, open_high: bool = False):
    """A ``refuse`` pair: every value of ``t`` lies in [0, 1], (0, 1], [0, 1) or (0, 1)."""
    bad = ((t <= 0) if open_low else (t < 0)) | ((t >= 1) if open_high else (t > 1)) | t.isnan()
    lb, rb = "(" if open_low else "[", ")" if open_high else "]"
    return bad.any(), lambda: (f"{name}: expected values in {lb}0, 1{rb}, got min {t.min().item():.4g}, "
                               f"max {t.max().item():.4g}")
