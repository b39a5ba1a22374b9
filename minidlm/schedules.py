"""Noise schedules for masked diffusion (lesson 02).

A schedule gives ``alpha(t)``: the probability that a token is still clean at time
t in [0, 1], with alpha(0) = 1 (clean) and alpha(1) ~= 0 (everything masked).
The NELBO weights each masked token's cross-entropy by

    w(t) = -alpha'(t) / (1 - alpha(t)).

Log-linear (alpha = 1 - t) gives w(t) = 1/t. By a change of variables the
continuous NELBO is the same for every schedule with alpha(0)=1, alpha(1)=0;
the schedule only changes the variance of its Monte Carlo estimate.
"""
from __future__ import annotations

import math

import torch

from ._validate import check_choice, check_unit_interval


def _as_tensor(t) -> torch.Tensor:
    t = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float64)
    return t if t.dtype.is_floating_point else t.double()


class Schedule:
    """Base class: subclasses define ``alpha`` and ``dalpha``; the rest follows."""

    name = "base"

    def alpha(self, t) -> torch.Tensor:  # probability a token is clean at time t
        raise NotImplementedError

    def dalpha(self, t) -> torch.Tensor:  # d alpha / dt (<= 0)
        raise NotImplementedError

    def weight(self, t) -> torch.Tensor:
        """NELBO weight -alpha'(t) / (1 - alpha(t)); infinite where alpha(t) = 1."""
        return -self.dalpha(t) / (1.0 - self.alpha(t))

    def sigma(self, t) -> torch.Tensor:
        """Total noise sigma(t) = -log alpha(t) (used by score entropy, lesson 12)."""
        return -torch.log(self.alpha(t))

    def _t(self, t) -> torch.Tensor:
        check_unit_interval("t", t)
        return _as_tensor(t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LogLinearSchedule(Schedule):
    """alpha(t) = 1 - t. Called log-linear because sigma(t) = -log(1 - t).
    MDLM's default: the lowest-variance estimate, weight 1/t."""

    name = "loglinear"

    def alpha(self, t):
        return 1.0 - self._t(t)

    def dalpha(self, t):
        return -torch.ones_like(self._t(t))

    def weight(self, t):
        return 1.0 / self._t(t)  # exact form, no 0/0 rounding


class LinearSchedule(Schedule):
    """Linear in the total noise (MDLM's naming): sigma(t) = s_min + t (s_max - s_min),
    alpha(t) = exp(-sigma(t)). alpha(1) = exp(-s_max) ~ 2e-9 for s_max = 20."""

    name = "linear"

    def __init__(self, sigma_min: float = 1e-4, sigma_max: float = 20.0):
        if not (0 <= sigma_min < sigma_max):
            raise ValueError(f"sigma_min, sigma_max: expected 0 <= sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def sigma(self, t):
        return self.sigma_min + self._t(t) * (self.sigma_max - self.sigma_min)

    def alpha(self, t):
        return torch.exp(-self.sigma(t))

    def dalpha(self, t):
        return -(self.sigma_max - self.sigma_min) * self.alpha(t)

    def weight(self, t):
        # -alpha'/(1-alpha) = sigma' e^-sigma / (1 - e^-sigma) = sigma' / expm1(sigma)
        return (self.sigma_max - self.sigma_min) / torch.expm1(self.sigma(t))

    def __repr__(self):
        return f"LinearSchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


class CosineSchedule(Schedule):
    """alpha(t) = cos(pi t / 2): masks slowly at first, fast at the end (MaskGIT-like)."""

    name = "cosine"

    def alpha(self, t):
        return torch.cos(0.5 * math.pi * self._t(t))

    def dalpha(self, t):
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * self._t(t))

    def weight(self, t):
        # (pi/2) sin(x) / (1 - cos(x)) with x = pi t / 2 equals (pi/2) cot(x / 2): no 0/0 near t = 0
        return 0.5 * math.pi / torch.tan(0.25 * math.pi * self._t(t))


class EsoLMSchedule(Schedule):
    """Eso-LM's alpha(t) = alpha0 (1 - t). Even at t = 0 a token is clean only with
    probability alpha0: the draft z0 the diffusion phase produces leaves a share
    1 - alpha0 masked, and the sequential (AR) phase fills those left to right.
    alpha0 = 1 is log-linear MDLM; alpha0 = 0 is pure AR (lessons 09-10)."""

    name = "esolm"

    def __init__(self, alpha0: float = 1.0):
        check_unit_interval("alpha0", alpha0)
        self.alpha0 = float(alpha0)

    def alpha(self, t):
        return self.alpha0 * (1.0 - self._t(t))

    def dalpha(self, t):
        return -self.alpha0 * torch.ones_like(self._t(t))

    def __repr__(self):
        return f"EsoLMSchedule(alpha0={self.alpha0})"


SCHEDULES = {
    "loglinear": LogLinearSchedule,
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "esolm": EsoLMSchedule,
}


def get_schedule(name: str | Schedule = "loglinear", **kwargs) -> Schedule:
    """Build a schedule by name (``loglinear``, ``linear``, ``cosine``, ``esolm``)."""
    if isinstance(name, Schedule):
        return name
    check_choice("schedule", name, SCHEDULES)
    return SCHEDULES[name](**kwargs)
