"""The training losses are NELBOs per generated token (issue 13's three loss bugs).

1. [BOS] is never masked, so an MDM loss per token divides by the L - 1 tokens the model produces
   (as AR's does), not by L: an all-zero-logit model costs log(V - 1) nats per token at any L.
2. The schedule decides the masking rate AND the weight: every schedule then estimates the same
   NELBO (the change-of-variables argument of lessons 02 and 05).
3. Times are float64 and strictly below 1, so sigma(t) = -log alpha(t) stays finite.
"""
import math

import pytest
import torch

from minidlm.forward import T_MAX, sample_times
from minidlm.losses import mdlm_nelbo, score_entropy
from minidlm.model import Model, ModelConfig
from minidlm.schedules import get_schedule
from minidlm.train import TrainConfig, compute_loss

V, MASK = 64, 3


class ZeroLogits(torch.nn.Module):
    """A model that knows nothing: uniform over the V - 1 non-[MASK] tokens under SUBS."""

    def forward(self, idx, **kw):
        return torch.zeros(*idx.shape, V)


def _mc_loss(model, L, schedule, n_batches, B=256, seed=0):
    """Monte Carlo NELBO per token: the mean of compute_loss over independent batches, and its
    standard error."""
    cfg = TrainConfig(objective="mdm", seq_len=L, batch_size=B, schedule=schedule, progress=False)
    gx = torch.Generator().manual_seed(seed)
    vals = []
    with torch.no_grad():
        for i in range(n_batches):
            x0 = torch.randint(4, V, (B, L), generator=gx)
            x0[:, 0] = 1                                                    # [BOS]
            vals.append(float(compute_loss(model, x0, cfg, MASK, torch.Generator().manual_seed(1000 + i))))
    vals = torch.tensor(vals, dtype=torch.float64)
    return float(vals.mean()), float(vals.std() / math.sqrt(len(vals)))


@pytest.mark.parametrize("L", [2, 8, 64])
def test_zero_logits_cost_log_v_minus_1_per_token_at_any_length(L):
    mean, se = _mc_loss(ZeroLogits(), L, "loglinear", n_batches=32)
    # the old division by L gave (L-1)/L log(V-1): 50% low at L = 2, 12.5% at L = 8, 1.6% at L = 64
    assert abs(mean - math.log(V - 1)) < 4 * se + 1e-9, (L, mean, se, math.log(V - 1))


@pytest.mark.parametrize("schedule", ["loglinear", "linear", "cosine"])
def test_zero_logits_cost_log_v_minus_1_under_every_schedule(schedule):
    # masking at 1 - t while weighting by another schedule's w(t) gave 6.69 (cosine) and 0.30 (linear)
    mean, se = _mc_loss(ZeroLogits(), 16, schedule, n_batches=32)
    assert abs(mean - math.log(V - 1)) < 4 * se + 0.02, (schedule, mean, se)


def test_the_same_model_has_the_same_nelbo_under_every_schedule():
    torch.manual_seed(0)
    model = Model(ModelConfig(vocab_size=V, max_len=16, n_layer=1, n_head=2, d_model=32, mask_id=MASK)).eval()
    res = {s: _mc_loss(model, 16, s, n_batches=48, B=128) for s in ("loglinear", "linear", "cosine")}
    ll, ll_se = res["loglinear"]
    for s in ("linear", "cosine"):
        m, se = res[s]
        # 0.05 nats: the t >= eps truncation differs by schedule (alpha(eps) is 0.999 for log-linear, 0.98 for linear)
        assert abs(m - ll) < 4 * math.hypot(se, ll_se) + 0.05, res


def test_bos_is_not_counted_but_pad_and_keep_compose():
    logits = torch.zeros(1, 4, V)
    x0 = torch.tensor([[1, 5, 6, 7]])
    xt = torch.tensor([[1, MASK, MASK, MASK]])
    keep = torch.tensor([True, False, False, False])
    per_tok = mdlm_nelbo(logits, x0, xt, torch.tensor([1.0]), MASK, reduction="token", keep=keep)
    assert float(per_tok) == pytest.approx(math.log(V - 1))
    with pytest.raises(ValueError, match="keep"):
        mdlm_nelbo(logits, x0, xt, torch.tensor([1.0]), MASK, keep=torch.tensor([True, False]))


def test_times_are_float64_and_below_one_even_for_the_largest_uniform(monkeypatch):
    import minidlm.forward as fwd
    largest = 1.0 - 2.0 ** -53                                              # the largest float64 below 1
    monkeypatch.setattr(fwd, "uniform", lambda shape, g, device: torch.full(shape, largest, dtype=torch.float64))
    t = sample_times(5, eps=1e-3, antithetic=False)
    assert t.dtype == torch.float64 and bool((t < 1).all()) and float(t.max()) <= T_MAX
    assert torch.tensor(largest * (1 - 1e-3) + 1e-3, dtype=torch.float64).float().item() == 1.0  # float32 would round to 1
    sigma = get_schedule("loglinear").sigma(t)
    assert torch.isfinite(sigma).all()
    x0 = torch.full((5, 3), 7)
    xt = torch.full((5, 3), MASK)
    loss = score_entropy(torch.zeros(5, 3, V), x0, xt, sigma, MASK, dsigma=1 / (1 - t))
    assert torch.isfinite(loss).all()


def test_bad_schedule_is_named():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(objective="mdm", schedule="esolm")
