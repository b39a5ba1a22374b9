"""Graded tests, lesson 07: the ancestral step, the transfer schedule, low confidence, blocks.

The sampler tests replay minidlm's own samplers step by step with YOUR function in the loop (the
same noise drawn in the same order), and ask for exactly the same final tokens.
"""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import sampling
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import ToyDenoiser, assert_same, gen, seeds, tokens

LESSON = "lesson07_sampling"
V, MASK = 8, 7


def _subs(logits):
    logits = logits.float().clone()
    logits[..., MASK] = float("-inf")
    return logits


def _ref_commit(conf, eligible, k):
    """The reference choice: the k[b] highest-confidence eligible positions of each row."""
    scores = torch.where(eligible, conf.double(), torch.full_like(conf, float("-inf"), dtype=torch.float64))
    commit = torch.zeros_like(eligible)
    for b in range(conf.shape[0]):
        commit[b, torch.topk(scores[b], int(k[b])).indices] = True
    return commit


@pytest.mark.task("7.1", points=3)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 10), steps=st.integers(1, 8), seed=seeds)
def test_ancestral_step_reproduces_the_sampler(load, B, L, steps, seed):
    model = ToyDenoiser(V, L, MASK, seed)
    expected, _ = sampling.ancestral(model, L, steps, MASK, batch_size=B, generator=seed, temperature=1.0)
    step = load(LESSON).ancestral_step
    g = gen(seed)                                   # the sampler's generator, drawn in its order
    x = torch.full((B, L), MASK)
    for i in range(steps, 0, -1):
        t, s = i / steps, (i - 1) / steps
        logits = model(x)                           # the raw model output: [MASK] logit not yet -inf
        u_gumbel = torch.rand(logits.shape, generator=g, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(u_gumbel.clamp_min(1e-300)))
        u = torch.rand((B, L), generator=g, dtype=torch.float64)
        x = step(logits, x, 1 - t, 1 - s, gumbel, u, MASK)
    assert_same(x, expected, "the sampled tokens")


@pytest.mark.task("7.1", points=3)
def test_ancestral_step_known_answer(load):
    logits = torch.tensor([[[0.0, 2.0, 1.0, 9.0], [3.0, 0.0, 0.0, 9.0], [0.0, 0.0, 5.0, 9.0]]])  # [MASK] = 3
    xt = torch.tensor([[3, 3, 0]])
    zero = torch.zeros(1, 3, 4, dtype=torch.float64)
    u = torch.tensor([[0.1, 0.9, 0.0]], dtype=torch.float64)
    step = load(LESSON).ancestral_step
    # t = 0.5 -> s = 0.25: reveal probability 0.5; position 0 (u = 0.1) is revealed with its argmax
    # (the [MASK] logit 9 never wins), position 1 (u = 0.9) stays masked, position 2 was clean
    assert step(logits, xt, 0.5, 0.75, zero, u, 3).tolist() == [[1, 3, 0]]
    # Gumbel noise can change the candidate
    noise = zero.clone()
    noise[0, 0, 2] = 5.0
    assert step(logits, xt, 0.5, 0.75, noise, u, 3).tolist() == [[2, 3, 0]]


@pytest.mark.task("7.2", points=2)
@GRADED
@given(n=st.lists(st.integers(0, 40), min_size=1, max_size=5), steps=st.integers(1, 12))
def test_transfer_counts_match_reference(load, n, steps):
    n = torch.tensor(n)
    got = load(LESSON).transfer_counts(n, steps)
    assert tuple(got.shape) == (len(n), steps)
    assert_same(got, sampling.transfer_counts(n, steps), "counts")


@pytest.mark.task("7.2", points=2)
def test_transfer_counts_known_answer(load):
    got = load(LESSON).transfer_counts(torch.tensor([10, 3]), 4)
    assert got.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0]]


@pytest.mark.task("7.3", points=3)
@GRADED
@given(B=st.integers(1, 4), L=st.integers(1, 12), seed=seeds)
def test_low_confidence_commit_matches_spec(load, B, L, seed):
    g = gen(seed)
    conf = torch.rand(B, L, generator=g)
    is_mask = torch.rand(B, L, generator=g) < 0.6
    k = (torch.rand(B, generator=g) * (is_mask.sum(1) + 1)).long().clamp(max=is_mask.sum(1))
    got = load(LESSON).low_confidence_commit(conf, is_mask, k)
    assert got.dtype == torch.bool and tuple(got.shape) == (B, L)
    assert_same(got, _ref_commit(conf, is_mask, k), "commit")


@pytest.mark.task("7.3", points=3)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 10), data=st.data(), seed=seeds)
def test_low_confidence_commit_reproduces_the_sampler(load, B, L, data, seed):
    steps = data.draw(st.integers(1, L))
    model = ToyDenoiser(V, L, MASK, seed)
    expected, _ = sampling.generate(model, L, steps, MASK, batch_size=B, temperature=0.0,
                                    remasking="low_confidence")
    commit_fn = load(LESSON).low_confidence_commit
    x = torch.full((B, L), MASK)
    counts = sampling.transfer_counts((x == MASK).sum(1), steps)
    for i in range(steps):
        is_mask = x == MASK
        logits = _subs(model(x))
        cand = logits.argmax(-1)
        conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)
        x = torch.where(commit_fn(conf, is_mask, counts[:, i]), cand, x)
    assert_same(x, expected, "the sampled tokens")


@pytest.mark.task("7.4", points=2)
def test_block_eligible_known_answer(load):
    is_mask = torch.tensor([[False, False, True, True, True, True, False, True]])
    got = load(LESSON).block_eligible(is_mask, 1, 3, start=2)      # block 1 = positions 5, 6, 7
    assert got.tolist() == [[False, False, False, False, False, True, False, True]]


@pytest.mark.task("7.4", points=2)
@GRADED
@given(B=st.integers(1, 3), P=st.integers(0, 3), n_blocks=st.integers(1, 3), block_length=st.integers(1, 4),
       data=st.data(), seed=seeds)
def test_block_eligible_reproduces_semi_autoregressive_sampling(load, B, P, n_blocks, block_length, data, seed):
    per_block = data.draw(st.integers(1, block_length))
    L, steps = P + n_blocks * block_length, per_block * n_blocks
    model = ToyDenoiser(V, L, MASK, seed)
    prompt = tokens(gen(seed), 1, P, V, MASK)[0] if P else None
    expected, _ = sampling.generate(model, L, steps, MASK, batch_size=B, prompt=prompt, temperature=0.0,
                                    block_length=block_length)
    eligible_fn = load(LESSON).block_eligible
    x = torch.full((B, L), MASK)
    if P:
        x[:, :P] = prompt
    for b in range(n_blocks):
        lo = P + b * block_length
        counts = sampling.transfer_counts((x[:, lo:lo + block_length] == MASK).sum(1), per_block)
        for i in range(per_block):
            logits = _subs(model(x))
            cand = logits.argmax(-1)
            conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)
            eligible = eligible_fn(x == MASK, b, block_length, start=P)
            x = torch.where(_ref_commit(conf, eligible, counts[:, i]), cand, x)
    assert_same(x, expected, "the sampled tokens")
