"""LLaDA's Monte Carlo conditional log-likelihood (evaluate.llada_log_likelihood, lesson 05)."""
import math

import pytest
import torch

from minidlm.evaluate import llada_log_likelihood
from minidlm.forward import mask_tokens, sample_times
from minidlm.losses import mdlm_nelbo

V, MASK = 12, 11
NONE = torch.zeros(0, dtype=torch.long)


class ContextFree:
    """Logits fixed per position (L, V), independent of the input: its joint is the product of the
    per-position distributions, so log p(answer) = sum_l log p_l(answer_l) exactly."""

    def __init__(self, table):
        self.table, self.inputs = table, []

    def __call__(self, x, **kw):
        self.inputs.append(x.clone())
        return self.table[None, : x.shape[1]].expand(x.shape[0], -1, -1).clone()   # (B, L, V)


def exact_log_p(table, answer, P=0):
    lp = torch.log_softmax(table.masked_fill(torch.arange(V) == MASK, float("-inf")).double(), -1)
    return lp[P: P + answer.shape[-1]].gather(-1, answer[:, None]).sum().item()


class CopyPrompt:
    """A conditional stub: answer position i is predicted as prompt token i (when visible)."""

    def __call__(self, x, **kw):
        B, L = x.shape
        P = L // 2
        logits = torch.zeros(B, L, V)
        src = x[:, :P].clamp(max=V - 1)                                          # (B, P)
        logits[:, P:].scatter_(-1, src[..., None], 6.0)
        return logits


def table(seed, L=10, scale=2.0):
    return torch.randn(L, V, generator=torch.Generator().manual_seed(seed)) * scale


def test_unbiased_for_a_context_free_model():
    tab = table(0)
    answer = torch.tensor([1, 5, 2, 9, 0, 4, 4, 7])
    est, se = llada_log_likelihood(ContextFree(tab), NONE, answer, MASK, n_samples=600, generator=1,
                                   return_stderr=True)
    assert isinstance(est, float) and isinstance(se, float) and se > 0
    assert abs(est - exact_log_p(tab, answer)) < 4 * se
    # with a prompt (never scored) and a batch of answers: a (B,) tensor, each within 4 stderr
    prompt = torch.tensor([3, 3])
    answers = torch.tensor([[1, 5, 2, 9, 0, 4], [8, 8, 8, 1, 2, 3], [0, 1, 2, 3, 4, 5]])
    est, se = llada_log_likelihood(ContextFree(tab), prompt, answers, MASK, n_samples=600, batch_size=50,
                                   generator=2, return_stderr=True)
    assert est.shape == se.shape == (3,) and est.dtype == torch.float64
    exact = torch.tensor([exact_log_p(tab, a, P=2) for a in answers], dtype=torch.float64)
    assert ((est - exact).abs() < 4 * se).all()


def test_exact_for_every_draw_when_the_cross_entropy_is_constant():
    """Every token costs log(V - 1) under flat logits: each draw is (N / l) * l * log(V - 1)."""
    answer = torch.tensor([[1, 2, 3, 4, 5], [9, 9, 0, 0, 1]])
    flat = ContextFree(torch.zeros(8, V))
    est, se = llada_log_likelihood(flat, torch.tensor([7, 7, 7]), answer, MASK, n_samples=40, batch_size=7,
                                   generator=0, return_stderr=True)
    assert torch.allclose(est, torch.full((2,), -5 * math.log(V - 1), dtype=torch.float64), atol=1e-5)
    assert (se < 1e-6).all()
    est, se = llada_log_likelihood(flat, NONE, torch.tensor([4]), MASK, n_samples=1, return_stderr=True)
    assert est == pytest.approx(-math.log(V - 1), abs=1e-5) and math.isnan(se)


def test_the_prompt_is_never_masked_and_each_draw_masks_1_to_N_answer_tokens():
    model = ContextFree(table(3))
    prompt, answer = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6, 7])
    llada_log_likelihood(model, prompt, answer, MASK, n_samples=50, batch_size=16, generator=0)
    assert [x.shape[0] for x in model.inputs] == [16, 16, 16, 2], "batch_size rows per call, n_samples in all"
    rows = torch.cat(model.inputs)                                             # (50, 7)
    assert (rows[:, :3] == prompt).all()
    n_masked = (rows[:, 3:] == MASK).sum(1)
    assert n_masked.min() >= 1 and n_masked.max() <= 4
    assert set(n_masked.tolist()) == {1, 2, 3, 4}
    clean = rows[:, 3:] != MASK
    assert (rows[:, 3:][clean] == answer.expand(50, -1)[clean]).all()


def test_prefers_the_true_answer_and_uses_the_prompt():
    prompt = torch.tensor([3, 1, 4, 1, 5])
    right, wrong = torch.tensor([3, 1, 4, 1, 5]), torch.tensor([3, 1, 9, 2, 6])
    model = CopyPrompt()
    ll_right = llada_log_likelihood(model, prompt, right, MASK, n_samples=32, generator=0)
    ll_wrong = llada_log_likelihood(model, prompt, wrong, MASK, n_samples=32, generator=0)
    ll_other_prompt = llada_log_likelihood(model, torch.tensor([2, 7, 1, 8, 2]), right, MASK, n_samples=32, generator=0)
    assert ll_right > ll_wrong + 10 and ll_right > ll_other_prompt + 10
    assert ll_right < 0


def test_same_generator_same_estimate():
    model, answer = ContextFree(table(4)), torch.tensor([1, 2, 3, 4, 5, 6])
    a = llada_log_likelihood(model, NONE, answer, MASK, n_samples=20, generator=5)
    b = llada_log_likelihood(model, NONE, answer, MASK, n_samples=20, generator=5)
    c = llada_log_likelihood(model, NONE, answer, MASK, n_samples=20, generator=6)
    assert a == b and a != c


def test_lower_variance_than_the_mdlm_estimator():
    """Both estimate the same number (the ELBO, exact here); LLaDA's bounded N / l weight has a far
    smaller spread than MDLM's 1/t weight with t ~ U(eps, 1) (the 1/t tail)."""
    tab = table(0, L=8)
    model = ContextFree(tab)
    answer = torch.tensor([1, 5, 2, 9, 0, 4, 4, 7])
    S = 1000
    _, se = llada_log_likelihood(model, NONE, answer, MASK, n_samples=S, generator=0, return_stderr=True)
    std_llada = se * math.sqrt(S)
    t = sample_times(S, antithetic=False, generator=100)
    x0 = answer[None].expand(S, -1)
    xt = mask_tokens(x0, 1 - t, MASK, generator=200)
    draws = mdlm_nelbo(model(xt), x0, xt, t, MASK, reduction="sequence").double()   # (S,) -ELBO draws
    assert std_llada < draws.std().item() / 2
    # flat logits: every LLaDA draw is exact, MDLM's still vary with the number masked
    flat = ContextFree(torch.zeros(8, V))
    _, se = llada_log_likelihood(flat, NONE, answer, MASK, n_samples=64, generator=0, return_stderr=True)
    draws = mdlm_nelbo(flat(xt[:64]), x0[:64], xt[:64], t[:64], MASK, reduction="sequence")
    assert se < 1e-6 and draws.std() > 1.0


def test_bad_arguments():
    model, prompt, answer = ContextFree(table(0)), torch.tensor([1, 2]), torch.tensor([3, 4, 5])
    bad = [
        (dict(n_samples=0), "n_samples"), (dict(n_samples=2.5), "n_samples"),
        (dict(batch_size=0), "batch_size"),
        (dict(answer=torch.zeros(0, dtype=torch.long)), "answer"),
        (dict(answer=torch.zeros(2, 0, dtype=torch.long)), "answer"),
        (dict(answer=torch.tensor([1.0, 2.0])), "answer"), (dict(answer=torch.zeros(1, 2, 3, dtype=torch.long)), "answer"),
        (dict(answer=torch.tensor([3, MASK])), "answer"), (dict(answer=torch.tensor([3, -1])), "answer"),
        (dict(answer=torch.tensor([3, V])), "answer"),
        (dict(mask_id=-1), "mask_id"), (dict(mask_id=V), "mask_id"), (dict(mask_id=V + 5), "mask_id"),
        (dict(mask_id=1.0), "mask_id"), (dict(prompt=torch.ones(2, 2, dtype=torch.long)), "prompt"),
        (dict(prompt=torch.ones(3, 2, dtype=torch.long), answer=torch.ones(2, 3, dtype=torch.long)), "prompt"),
        (dict(model="not a model"), "model"), (dict(return_stderr=1), "return_stderr"),
        (dict(model=lambda x: torch.zeros(x.shape[0], V)), "model"),
    ]
    for kw, name in bad:
        args = dict(model=model, prompt=prompt, answer=answer, mask_id=MASK)
        args.update(kw)
        m, p, a, mid = args.pop("model"), args.pop("prompt"), args.pop("answer"), args.pop("mask_id")
        with pytest.raises(ValueError, match=name):
            llada_log_likelihood(m, p, a, mid, **args)
