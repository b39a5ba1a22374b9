import math

import pytest
import torch

from minidlm.schedules import SCHEDULES, EsoLMSchedule, get_schedule

NAMES = ["loglinear", "linear", "cosine", "esolm"]


@pytest.mark.parametrize("name", NAMES)
def test_alpha_endpoints_and_monotone(name):
    s = get_schedule(name)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    a = s.alpha(t)
    assert a[0].item() == pytest.approx(1.0, abs=1e-3)
    assert a[-1].item() == pytest.approx(0.0, abs=1e-6)
    assert (a[1:] <= a[:-1] + 1e-12).all(), "alpha must not increase with t"


@pytest.mark.parametrize("name", NAMES)
def test_dalpha_is_the_derivative(name):
    s = get_schedule(name)
    t = torch.linspace(0.05, 0.95, 37, dtype=torch.float64)
    h = 1e-6
    fd = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)
    torch.testing.assert_close(s.dalpha(t), fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_weight_formula(name):
    s = get_schedule(name)
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    torch.testing.assert_close(s.weight(t), -s.dalpha(t) / (1 - s.alpha(t)), rtol=1e-9, atol=1e-9)


def test_loglinear_weight_is_one_over_t():
    t = torch.tensor([0.001, 0.25, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(get_schedule("loglinear").weight(t), 1 / t)


@pytest.mark.parametrize("name,expected", [("loglinear", 1.0), ("linear", 1.0), ("cosine", 1.0)])
def test_nelbo_invariance_to_schedule(name, expected):
    """For a model that predicts the true marginal, E[masked CE at t] = (1 - alpha_t) H per token,
    so the NELBO per token per nat of entropy is  int_0^1 w(t) (1 - alpha(t)) dt = alpha(0) - alpha(1).
    Every schedule gives the same answer: the change-of-variables invariance."""
    s = get_schedule(name)
    # integrate in u = log t to resolve the 1/t region
    u = torch.linspace(math.log(1e-6), 0, 200_001, dtype=torch.float64)
    t = u.exp()
    integrand = s.weight(t) * (1 - s.alpha(t)) * t
    assert torch.trapezoid(integrand, u).item() == pytest.approx(expected, rel=2e-3)


def test_esolm_schedule_starts_at_alpha0():
    s = EsoLMSchedule(alpha0=0.25)
    assert s.alpha(0.0).item() == pytest.approx(0.25)
    assert s.alpha(1.0).item() == 0.0
    assert get_schedule("esolm", alpha0=1.0).alpha(0.3).item() == pytest.approx(get_schedule("loglinear").alpha(0.3).item())


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_t_outside_unit_interval_raises(bad):
    with pytest.raises(ValueError, match=r"^t:"):
        get_schedule("loglinear").alpha(bad)


def test_bad_names_and_alpha0():
    with pytest.raises(ValueError, match="schedule"):
        get_schedule("quadratic")
    with pytest.raises(ValueError, match="alpha0"):
        EsoLMSchedule(alpha0=1.2)
    assert set(NAMES) == set(SCHEDULES)
