"""Graded tests, lesson 08: confidence-threshold (adaptive) decoding."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import sampling
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import ToyDenoiser, assert_same, seeds

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
