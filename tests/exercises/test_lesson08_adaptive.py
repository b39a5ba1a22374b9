"""Graded tests, lesson 08: confidence-threshold (adaptive) decoding."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm import sampling
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import ToyDenoiser, assert_same, gen, seeds, tokens

LESSON = "lesson08_adaptive"
V, MASK = 8, 7


@pytest.mark.task("8.1", points=2)
def test_threshold_commit_known_answer(load):
    conf = torch.tensor([[0.95, 0.5, 0.92, 0.1], [0.3, 0.6, 0.2, 0.99], [0.9, 0.9, 0.9, 0.9]])
    eligible = torch.tensor([[True, True, True, False], [True, True, True, False], [False] * 4])
    got = load(LESSON).threshold_commit(conf, eligible, 0.9)
    assert got.tolist() == [[True, False, True, False],     # both sure ones
                            [False, True, False, False],    # none sure: the best eligible one (0.99 is not eligible)
                            [False] * 4]                    # nothing eligible, nothing committed


@pytest.mark.task("8.1", points=2)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 10), threshold=st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0]),
       blocks=st.booleans(), seed=seeds)
def test_threshold_commit_reproduces_adaptive_sampling(load, B, L, threshold, blocks, seed):
    block_length = next(d for d in (3, 2, 1) if L % d == 0) if blocks else L
    model = ToyDenoiser(V, L, MASK, seed)
    expected, trace = sampling.generate_adaptive(model, L, MASK, threshold=threshold, batch_size=B,
                                                 block_length=block_length, temperature=0.0)
    commit_fn = load(LESSON).threshold_commit
    x, steps = torch.full((B, L), MASK), 0
    pos = torch.arange(L)
    for lo in range(0, L, block_length):
        in_block = (pos >= lo) & (pos < lo + block_length)
        while (x[:, in_block] == MASK).any():
            assert steps < L * B + 1, "no progress: commit at least one position per step"
            steps += 1
            logits = model(x).float()
            logits[..., MASK] = float("-inf")
            cand = logits.argmax(-1)
            conf = torch.softmax(logits, -1).gather(-1, cand[..., None]).squeeze(-1)
            commit = commit_fn(conf, (x == MASK) & in_block, threshold)
            x = torch.where(commit, cand, x)
    assert_same(x, expected, "the sampled tokens")
    assert steps == trace.nfe


# ----------------------------------------------------------------------------- task 8.2
class _Recorder:
    """Wraps a model: keeps a copy of every input it is called on, and stops a sampler that makes
    more calls than it can need (a sampler that commits nothing would otherwise never end)."""

    def __init__(self, model, cap):
        self.model, self.cap, self.inputs = model, cap, []

    def __call__(self, x, **kwargs):
        if len(self.inputs) >= self.cap:
            raise AssertionError(f"more than {self.cap} network calls for {x.shape[1]} positions: a step "
                                 f"must commit at least one position in every unfinished row")
        self.inputs.append(x.clone())
        return self.model(x)


class _Tie:
    """Every position: tokens 0 and 1 share the top probability (exactly 0.5 each once [MASK] is
    -inf); the [MASK] logit itself is the largest, as an untrained model's may be."""

    def __call__(self, x, **kwargs):
        logits = torch.full((*x.shape, V), float("-inf"))
        logits[..., 0] = logits[..., 1] = 0.0
        logits[..., MASK] = 3.0
        return logits


def _start(B, L, P, seed):
    x = torch.full((B, L), MASK)
    prompt = tokens(gen(seed + 1), 1, P, V, MASK)[0] if P else None
    if P:
        x[:, :P] = prompt
    return x, prompt


@pytest.mark.task("8.2", points=8)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 10), P=st.integers(0, 2), blocks=st.booleans(),
       threshold=st.sampled_from([0.0, 0.3, 0.6, 0.9, 1.0]), temperature=st.sampled_from([0.0, 1.0, 0.7]),
       seed=seeds)
def test_threshold_sample_reproduces_generate_adaptive(load, B, L, P, blocks, threshold, temperature, seed):
    P = min(P, L - 1)
    n = L - P
    block_length = next(d for d in (3, 2, 1) if n % d == 0) if blocks else None
    x, prompt = _start(B, L, P, seed)
    model = ToyDenoiser(V, L, MASK, seed)
    expected, trace = sampling.generate_adaptive(model, L, MASK, threshold=threshold, batch_size=B, prompt=prompt,
                                                 block_length=block_length, temperature=temperature,
                                                 generator=seed)
    rec = _Recorder(model, cap=n + 1)
    got, calls = load(LESSON).threshold_sample(rec, x, MASK, threshold, start=P, block_length=block_length,
                                               temperature=temperature, generator=gen(seed))
    assert_same(got, expected, "the sampled tokens")
    assert len(rec.inputs) == trace.nfe, f"{len(rec.inputs)} network calls, generate_adaptive made {trace.nfe}"
    assert calls == trace.nfe, f"you report {calls} calls, you made {len(rec.inputs)}"


@pytest.mark.task("8.2", points=2)
@settings(GRADED, max_examples=10)
@given(B=st.integers(1, 3), L=st.integers(2, 10), P=st.integers(0, 2), blocks=st.booleans(),
       threshold=st.sampled_from([0.3, 0.9, 1.0]), seed=seeds)
def test_threshold_sample_never_changes_a_committed_token(load, B, L, P, blocks, threshold, seed):
    P = min(P, L - 1)
    block_length = next(d for d in (3, 2, 1) if (L - P) % d == 0) if blocks else None
    x, _ = _start(B, L, P, seed)
    rec = _Recorder(ToyDenoiser(V, L, MASK, seed), cap=L - P + 1)
    got, _ = load(LESSON).threshold_sample(rec, x, MASK, threshold, start=P, block_length=block_length,
                                           temperature=1.0, generator=gen(seed))
    states = rec.inputs + [got]
    for i, (before, after) in enumerate(zip(states, states[1:])):
        clean = before != MASK
        assert torch.equal(after[clean], before[clean]), \
            f"a token committed before call {i + 1} changed after it: committed tokens are final"
        assert ((before == MASK) & (after != MASK)).any(), f"call {i + 1} committed nothing"
    assert not (got == MASK).any(), "positions left as [MASK]"


@pytest.mark.task("8.2", points=6)
def test_threshold_sample_known_answers(load):
    """With _Tie every confidence is exactly 0.5: the threshold 0.5 commits a whole block per call
    (conf >= threshold), 0.6 only the "at least one" position, the leftmost."""
    sample = load(LESSON).threshold_sample
    L = 7
    x = torch.full((2, L), MASK)
    x[:, 0] = 5                                                  # a one-token prompt
    for threshold, block_length, calls_expected in ((0.5, None, 1), (0.5, 2, 3), (0.5, 3, 2), (0.6, None, 6)):
        rec = _Recorder(_Tie(), cap=L)
        got, calls = sample(rec, x, MASK, threshold, start=1, block_length=block_length)
        what = f"threshold {threshold}, block_length {block_length}, prompt of 1"
        assert got.tolist() == [[5] + [0] * (L - 1)] * 2, f"{what}: tokens {got.tolist()}"
        assert calls == len(rec.inputs) == calls_expected, \
            f"{what}: {len(rec.inputs)} network calls (you report {calls}), expected {calls_expected}"
        if threshold == 0.6:                                     # one per call, left to right
            for i, state in enumerate(rec.inputs):
                assert (state[:, 1:] != MASK).sum(1).tolist() == [i, i], "one token per call"
                assert (state[:, 1:1 + i] == 0).all(), "ties go to the leftmost eligible position"
    assert x[:, 1:].eq(MASK).all(), "x must not be modified in place"
