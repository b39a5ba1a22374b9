"""Drawing the length first (minidlm/length.py, the eos_id option of the samplers).

The checks use an EXACT toy model: texts are ``[BOS] w w ... w [EOS] [EOS] ...``, each w drawn
uniformly from two words (a and b), with the end (the first [EOS]) drawn from a known distribution;
the "network" returns the true conditional marginals given what is visible. Against it, confidence ordering must show the short-text bias,
and the length-first draw must give back the true end distribution.
"""
import torch
import pytest

from minidlm.length import draw_end, end_distribution
from minidlm.sampling import generate, generate_adaptive

L, V, MASK, BOS, EOS, A, B_ = 24, 6, 3, 1, 2, 5, 4
ENDS = torch.arange(L)
PMF = torch.zeros(L, dtype=torch.float64)
PMF[8:20] = torch.linspace(1, 3, 12, dtype=torch.float64)   # the end lies in 8..19, later likelier
PMF /= PMF.sum()


def exact_model(x: torch.Tensor) -> torch.Tensor:
    """True p(x^k | visible) for the toy corpus, as logits (B, L, V)."""
    B = x.shape[0]
    pos = torch.arange(L)
    # the end e is consistent with x when every written word is before e and every written EOS at or after e
    last_a = torch.where((x == A) | (x == B_), pos, torch.full_like(x, -1)).max(1).values              # (B,)
    first_eos = torch.where(x == EOS, pos, torch.full_like(x, L)).min(1).values          # (B,)
    ok = (ENDS[None] > last_a[:, None]) & (ENDS[None] <= first_eos[:, None])             # (B, E)
    post = PMF[None] * ok                                                                 # (B, E)
    post = post / post.sum(1, keepdim=True)
    p_eos = post.cumsum(1)                                   # P(end <= k | visible), (B, L)
    probs = torch.zeros(B, L, V, dtype=torch.float64)
    probs[..., EOS] = p_eos
    probs[..., A] = (1 - p_eos) / 2
    probs[..., B_] = (1 - p_eos) / 2
    probs[:, 0] = 0
    probs[:, 0, BOS] = 1
    return torch.log(probs.clamp_min(1e-30)).float()


def first_eos(x):
    return torch.where(x == EOS, torch.arange(L), torch.full_like(x, L)).min(1).values


def start(B):
    x = torch.full((B, L), MASK)
    x[:, 0] = BOS
    return x


def test_end_distribution_is_the_running_max_over_a_free_tail():
    p = torch.tensor([[0.0, 0.1, 0.3, 0.2, 0.6, 1.0]])                    # a dip at position 3
    x = torch.full((1, 6), MASK)
    F = end_distribution(p, x, MASK)
    assert torch.allclose(F, torch.tensor([[0.0, 0.1, 0.3, 0.3, 0.6, 1.0]], dtype=torch.float64))
    x[0, 3] = A                                                            # a written token at 3
    F = end_distribution(p, x, MASK)                                       # the end must come after it
    assert torch.allclose(F, torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.6, 1.0]], dtype=torch.float64))


def test_draw_end_samples_the_models_length_distribution():
    n = 40000
    p_eos = torch.softmax(exact_model(start(1)).double(), -1)[..., EOS].expand(n, -1)
    tail = draw_end(p_eos, start(n), MASK, torch.Generator().manual_seed(0))
    ends = L - tail.sum(1)
    emp = torch.bincount(ends, minlength=L + 1)[:L].double() / n
    assert (emp - PMF).abs().max() < 0.01                                  # ~4 standard errors
    assert bool((tail.long().diff(dim=1) >= 0).all())                      # a tail: once True, stays True
    assert not tail[:, 0].any()                                            # BOS is never overwritten


def test_confidence_order_is_biased_short_and_the_length_draw_removes_it():
    n, T = 2000, 12
    true_mean = float((PMF * ENDS).sum())
    prompt = torch.tensor([BOS])
    x, _ = generate(exact_model, L, T, MASK, batch_size=n, prompt=prompt, generator=0)
    biased = first_eos(x).double().mean().item()
    assert biased < true_mean - 3                                          # marches EOS leftwards
    x, tr = generate(exact_model, L, T, MASK, batch_size=n, prompt=prompt, generator=0, eos_id=EOS)
    ends = first_eos(x)
    emp = torch.bincount(ends, minlength=L + 1)[:L].double() / n
    assert (emp - PMF).abs().max() < 0.035
    assert abs(ends.double().mean().item() - true_mean) < 0.3
    # every row: words before its end, EOS from it on; step 1 wrote EOS only; T calls in all
    pos = torch.arange(L)[None]
    body = (pos >= 1) & (pos < ends[:, None])
    assert bool(((x[body] == A) | (x[body] == B_)).all()) and bool((x[pos.expand(n, -1) >= ends[:, None]] == EOS).all())
    step1 = tr.reveal_step == 1
    assert bool((x[step1] == EOS).all()) and tr.nfe == T


def test_adaptive_with_length_draw_keeps_the_distribution():
    n = 2000
    x, tr = generate_adaptive(exact_model, L, MASK, threshold=0.9, batch_size=n,
                              prompt=torch.tensor([BOS]), generator=1, temperature=1.0, eos_id=EOS)
    emp = torch.bincount(first_eos(x), minlength=L + 1)[:L].double() / n
    assert (emp - PMF).abs().max() < 0.035
    assert tr.nfe <= 1 + L - 1    # the length call, then at least one commit per call


def test_length_draw_errors_name_the_argument():
    with pytest.raises(ValueError, match="eos_id"):
        generate(exact_model, L, 4, MASK, prompt=torch.tensor([BOS]), eos_id=EOS, block_length=1)
    with pytest.raises(ValueError, match="steps"):
        generate(exact_model, L, 1, MASK, prompt=torch.tensor([BOS]), eos_id=EOS)
    with pytest.raises(ValueError, match="eos_id"):
        generate(exact_model, L, 4, MASK, prompt=torch.tensor([BOS]), eos_id=-1)
