"""ReMDM remasking (lesson 15): the step's rates, its schedules and the sampler."""
import pytest
import torch

from minidlm.model import Model, ModelConfig
from minidlm.remask import _alpha_path, remasking_sigma, remdm_generate, remdm_step, sigma_max
from minidlm.sampling import ancestral
from minidlm.schedules import get_schedule

MASK = 3


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=24, max_len=16, n_layer=1, n_head=2, d_model=32, mask_id=MASK)
    return Model(cfg).eval()


def test_sigma_schedules_stay_valid():
    sched = get_schedule("loglinear")
    T = 20
    for k in range(T):
        a_t, a_s = float(sched.alpha(1 - k / T)), float(sched.alpha(1 - (k + 1) / T))
        top = sigma_max(a_t, a_s)
        for s in (remasking_sigma("cap", a_t, a_s, eta_cap=0.5), remasking_sigma("rescale", a_t, a_s, eta_rescale=0.7)):
            assert 0 <= s <= top
            p_unmask = 1.0 if a_t == 0 else (a_s - (1 - s) * a_t) / (1 - a_t)
            assert -1e-12 <= p_unmask <= 1 + 1e-12                   # a probability: the step is valid
    assert remasking_sigma("cap", 0.5, 0.6, eta_cap=0.01) == 0.01
    assert remasking_sigma("rescale", 0.5, 0.6, eta_rescale=0.5) == pytest.approx(0.5 * 0.4 / 0.5)


def test_step_keeps_the_forward_marginal():
    """From a state masked at rate 1 - alpha_t, one step leaves it masked at rate 1 - alpha_s on
    average, whatever sigma: remasking trades tokens for masks without changing the schedule."""
    g = torch.Generator().manual_seed(1)
    N = 200_000
    a_t, a_s = 0.4, 0.55
    for sigma in (0.0, 0.1, sigma_max(a_t, a_s)):
        x = torch.where(torch.rand(1, N, generator=g) < a_t, torch.full((1, N), 7), torch.full((1, N), MASK))
        new = remdm_step(x, torch.full((1, N), 9), a_t, a_s, sigma, MASK, torch.rand(1, N, generator=g, dtype=torch.float64))
        assert abs(float((new == MASK).double().mean()) - (1 - a_s)) < 0.005, sigma
        remasked = float(((x == 7) & (new == MASK)).double().sum() / (x == 7).double().sum())
        assert abs(remasked - sigma) < 0.005


def test_step_rules():
    x = torch.tensor([[5, MASK, 6, MASK, 8]])
    cand = torch.tensor([[10, 11, 12, 13, 14]])
    u = torch.tensor([[0.01, 0.01, 0.9, 0.9, 0.01]], dtype=torch.float64)
    fixed = torch.tensor([[True, False, False, False, False]])
    new = remdm_step(x, cand, 0.5, 0.75, 0.05, MASK, u, fixed)
    # p_unmask = (0.75 - 0.95 * 0.5) / 0.5 = 0.55: u = 0.01 decodes, 0.9 does not; u < 0.05 remasks
    assert new.tolist() == [[5, 11, 6, MASK, MASK]]
    plain = remdm_step(x, cand, 0.5, 0.75, 0.0, MASK, u)
    assert plain.tolist() == [[5, 11, 6, MASK, 8]]                       # sigma = 0: MDLM, nothing taken back


def test_zero_eta_is_mdlm_ancestral_token_for_token(model):
    for steps in (5, 15, 40):
        a, tra = ancestral(model, 16, steps, MASK, batch_size=3, prompt=torch.tensor([1]), generator=11)
        b, trb = remdm_generate(model, 16, steps, MASK, strategy="cap", eta_cap=0.0, batch_size=3,
                                prompt=torch.tensor([1]), generator=11)
        assert torch.equal(a, b) and tra.nfe == trb.nfe


@pytest.mark.parametrize("strategy", ["cap", "rescale", "loop"])
def test_sampler_changes_only_as_remdm_allows(model, strategy):
    x, tr = remdm_generate(model, 16, 48, MASK, strategy=strategy, eta_cap=0.3, eta_rescale=0.5,
                           batch_size=4, prompt=torch.tensor([1, 2]), generator=3)
    assert tr.revises and tr.steps == 48 and 1 <= tr.nfe <= 48
    assert not bool((x == MASK).any())                                    # the last step decodes all
    remasks = 0
    for k in range(1, 49):
        before, after = tr.states[k - 1], tr.states[k]
        assert torch.equal(after[:, :2], torch.tensor([[1, 2]]).expand(4, -1))   # the prompt never moves
        moved = before != after
        # a token goes back to [MASK] or a [MASK] is decoded; never one token straight to another
        assert bool(((before[moved] == MASK) | (after[moved] == MASK)).all())
        remasks += int(((before != MASK) & (after == MASK)).sum())
    assert remasks > 0                                                    # it did revise


def test_loop_path_holds_alpha():
    sched = get_schedule("loglinear")
    path = _alpha_path(sched, 20, "loop", 0.55, 0.05)
    assert path[0] == 0 and path[-1] == pytest.approx(1.0)
    assert all(b >= a - 1e-12 for a, b in zip(path, path[1:]))
    held = [a for k, a in enumerate(path) if 0.05 <= 1 - k / 20 <= 0.55]
    assert len(held) > 5 and max(held) - min(held) < 1e-12 and held[0] == pytest.approx(0.45)


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="strategy"):
        remdm_generate(model, 16, 8, MASK, strategy="conf")
    with pytest.raises(ValueError, match="eta_cap"):
        remdm_generate(model, 16, 8, MASK, eta_cap=1.5)
    with pytest.raises(ValueError, match="t_on"):
        remdm_generate(model, 16, 8, MASK, strategy="loop", t_on=0.1, t_off=0.3)
    with pytest.raises(ValueError, match="steps"):
        remdm_generate(model, 16, 0, MASK)
