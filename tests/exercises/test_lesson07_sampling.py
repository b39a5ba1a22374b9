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


# ----------------------------------------------------------------------------- 7.5: the LLaDA loop
def _llada_case(B, P, n_blocks, block_length, per_block, seed):
    """A ToyDenoiser, a prompt (or None) and the sizes of one semi-autoregressive run."""
    L, steps = P + n_blocks * block_length, per_block * n_blocks
    prompt = tokens(gen(seed + 1), 1, P, V, MASK)[0] if P else None
    return ToyDenoiser(V, L, MASK, seed), prompt, L, steps


llada_cases = dict(B=st.integers(1, 3), P=st.integers(0, 2), n_blocks=st.integers(1, 3),
                   block_length=st.integers(1, 4), data=st.data(), seed=seeds)


@pytest.mark.task("7.5", points=10)
@GRADED
@given(temperature=st.sampled_from([1.0, 1.0, 0.7, 1.5, 0.0]), **llada_cases)
def test_llada_generate_reproduces_generate(load, B, P, n_blocks, block_length, data, seed, temperature):
    per_block = data.draw(st.integers(1, block_length), label="steps per block")
    model, prompt, L, steps = _llada_case(B, P, n_blocks, block_length, per_block, seed)
    blocks = block_length if n_blocks > 1 or data.draw(st.booleans(), label="pass block_length") else None
    expected, trace = sampling.generate(model, L, steps, MASK, batch_size=B, prompt=prompt, block_length=blocks,
                                        temperature=temperature, generator=seed)
    model.calls = 0
    x, states = load(LESSON).llada_generate(model, L, steps, MASK, gen(seed), prompt=prompt, batch_size=B,
                                            block_length=blocks, temperature=temperature)
    assert_same(x, expected, "the sampled tokens")
    assert len(states) == steps + 1, f"states: expected steps + 1 = {steps + 1} states, got {len(states)}"
    for k, (yours, ref) in enumerate(zip(states, trace.states)):
        assert_same(yours, ref, f"the state after step {k}")
    assert model.calls == steps, f"expected one network call per step ({steps}), you made {model.calls}"


@pytest.mark.task("7.5", points=4)
@GRADED
@given(**llada_cases)
def test_llada_generate_commits_the_schedule_and_never_changes_a_token(load, B, P, n_blocks, block_length,
                                                                        data, seed):
    per_block = data.draw(st.integers(1, block_length), label="steps per block")
    model, prompt, L, steps = _llada_case(B, P, n_blocks, block_length, per_block, seed)
    _, states = load(LESSON).llada_generate(model, L, steps, MASK, gen(seed), prompt=prompt, batch_size=B,
                                            block_length=block_length)
    assert len(states) == steps + 1, f"states: expected steps + 1 = {steps + 1} states, got {len(states)}"
    start = torch.full((B, L), MASK)
    if P:
        start[:, :P] = prompt
    assert_same(states[0], start, "states[0] (all [MASK] after the prompt)")
    due = sampling.transfer_counts(torch.full((B,), block_length), per_block)      # (B, per_block)
    pos = torch.arange(L)
    for k in range(1, steps + 1):
        before, after = states[k - 1], states[k]
        kept = before != MASK
        assert torch.equal(after[kept], before[kept]), f"step {k} changed a token committed before it"
        new = (before == MASK) & (after != MASK)                                    # (B, L)
        assert torch.equal(after == MASK, (before == MASK) & ~new), f"step {k} masked a position again"
        b, i = divmod(k - 1, per_block)
        lo = P + b * block_length
        assert not (new & ((pos < lo) | (pos >= lo + block_length))).any(), \
            f"step {k} committed a position outside block {b} (positions {lo}..{lo + block_length - 1})"
        assert new.sum(1).tolist() == due[:, i].tolist(), \
            f"step {k} (block {b}, step {i + 1} of it) committed {new.sum(1).tolist()} tokens per row, " \
            f"expected {due[:, i].tolist()}"
    assert not (states[-1] == MASK).any(), "a [MASK] is left after the last step"


class _Fixed:
    """Logits that ignore the input: position l proposes token 0 with logit c[l] against 0 for token 1
    (and a large [MASK] logit, which the sampler must ignore). V = 3, [MASK] = 2."""

    def __init__(self, c):
        self.c = torch.tensor(c)

    def __call__(self, x, **kwargs):
        B, L = x.shape
        logits = torch.zeros(B, L, 3)
        logits[..., 0], logits[..., 2] = self.c, 9.0
        return logits


@pytest.mark.task("7.5", points=2)
def test_llada_generate_known_answer(load):
    # greedy proposals: 0, 0, 0, 1 with confidences sigmoid(1, 3, 2, 4) = 0.73, 0.95, 0.88, 0.98
    fn = load(LESSON).llada_generate
    model = _Fixed([1.0, 3.0, 2.0, -4.0])
    _, states = fn(model, 4, 2, 2, torch.Generator().manual_seed(0), temperature=0.0)
    assert [s.tolist() for s in states] == [[[2, 2, 2, 2]], [[2, 0, 2, 1]], [[0, 0, 0, 1]]], \
        "one block, 2 steps: the two most confident positions (3, then 1) go first"
    _, states = fn(model, 4, 4, 2, torch.Generator().manual_seed(0), block_length=2, temperature=0.0)
    assert [s.tolist()[0] for s in states] == [[2, 2, 2, 2], [2, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 1], [0, 0, 0, 1]], \
        "two blocks of 2, 2 steps each: block 0 (1 then 0), then block 1 (3 then 2)"
    # a prompt of one token (position 0): the blocks are positions 1-2 and 3-4
    _, states = fn(_Fixed([5.0, -1.0, 3.0, 2.0, -4.0]), 5, 4, 2, torch.Generator().manual_seed(0),
                   prompt=torch.tensor([1]), block_length=2, temperature=0.0)
    assert [s.tolist()[0] for s in states] == [[1, 2, 2, 2, 2], [1, 2, 0, 2, 2], [1, 1, 0, 2, 2],
                                               [1, 1, 0, 2, 1], [1, 1, 0, 0, 1]], \
        "prompt [1], two blocks of 2 after it, 2 steps each"


# ----------------------------------------------------------------------------- 7.6: the ancestral loop
def _changed_steps(trace, steps):
    """The steps 1..T that changed the state, read from minidlm's trace."""
    return [k for k in range(1, steps + 1) if not torch.equal(trace.states[k], trace.states[k - 1])]


@pytest.mark.task("7.6", points=10)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 8), P=st.integers(0, 2), steps=st.integers(1, 24), seed=seeds)
def test_ancestral_generate_reproduces_ancestral(load, B, L, P, steps, seed):
    P = min(P, L - 1)
    model = ToyDenoiser(V, L, MASK, seed)
    prompt = tokens(gen(seed + 1), 1, P, V, MASK)[0] if P else None
    expected, trace = sampling.ancestral(model, L, steps, MASK, batch_size=B, prompt=prompt, generator=seed)
    model.calls = 0
    x, calls = load(LESSON).ancestral_generate(model, L, steps, MASK, gen(seed), prompt=prompt, batch_size=B)
    assert_same(x, expected, "the sampled tokens")
    assert model.calls == trace.nfe, \
        f"network calls: you called the model {model.calls} times, minidlm's cached sampler {trace.nfe}"
    assert calls == model.calls, f"calls: you returned {calls} but called the model {model.calls} times"


@pytest.mark.task("7.6", points=4)
@GRADED
@given(B=st.integers(1, 2), L=st.integers(1, 6), steps=st.sampled_from([1, 2, 5, 16, 64, 200]), seed=seeds)
def test_ancestral_generate_calls_only_after_a_change(load, B, L, steps, seed):
    model = ToyDenoiser(V, L, MASK, seed)
    _, trace = sampling.ancestral(model, L, steps, MASK, batch_size=B, generator=seed)
    changed = _changed_steps(trace, steps)
    expected = 1 + sum(k < steps for k in changed)        # the first call, then one after each change
    seen = []

    def watched(x, **kwargs):
        seen.append(x.clone())
        return model(x)

    x, calls = load(LESSON).ancestral_generate(watched, L, steps, MASK, gen(seed), batch_size=B)
    assert not (x == MASK).any(), "a [MASK] is left after the last step (s = 0 reveals every position)"
    assert torch.equal(seen[0], torch.full((B, L), MASK)), "the first call must see the all-[MASK] start"
    for a, b in zip(seen, seen[1:]):
        assert not torch.equal(a, b), "the model was called twice on the same state: reuse its logits"
    assert len(seen) == calls == expected, \
        f"calls: expected 1 + (steps among the first T - 1 = {steps - 1} that changed x) = {expected}, " \
        f"you made {len(seen)} and returned {calls}"
    assert calls <= min(steps, B * L + 1)


@pytest.mark.task("7.6", points=2)
def test_ancestral_generate_known_answer(load):
    # one step (t = 1 -> 0) reveals everything, with one call; a model that is sure of every token
    # (logit 50 for token (l mod 3)) gives the same tokens whatever the noise
    class Sure:
        def __call__(self, x, **kwargs):
            B, L = x.shape
            logits = torch.zeros(B, L, 4)
            logits[:, torch.arange(L), torch.arange(L) % 3] = 50.0
            logits[..., 3] = 99.0                                   # the [MASK] logit: never proposed
            return logits

    fn = load(LESSON).ancestral_generate
    x, calls = fn(Sure(), 5, 1, 3, torch.Generator().manual_seed(0), batch_size=2)
    assert x.tolist() == [[0, 1, 2, 0, 1]] * 2 and calls == 1
    # a prompt is kept, and with T = 1000 steps for 3 masks at most 3 + 1 calls are made
    x, calls = fn(Sure(), 4, 1000, 3, torch.Generator().manual_seed(0), prompt=torch.tensor([2]))
    assert x.tolist() == [[2, 1, 2, 0]] and 1 <= calls <= 4, f"got {x.tolist()} with {calls} calls"
