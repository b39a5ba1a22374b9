"""Graded tests, lesson 13: when an answer is readable, and the Pareto front."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import latency
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import gen, seeds

LESSON = "lesson13_speed"


@pytest.mark.task("13.1", points=1)
def test_prefix_ready_times_known_answer(load):
    reveal = torch.tensor([[1, 2, 3], [3, 1, 2], [2, 2, 1]])
    times = torch.tensor([0.1, 0.25, 0.4], dtype=torch.float64)
    got = load(LESSON).prefix_ready_times(reveal, times)
    assert got.tolist() == [[0.1, 0.25, 0.4], [0.4, 0.4, 0.4], [0.25, 0.25, 0.25]]


@pytest.mark.task("13.1", points=3)
@GRADED
@given(B=st.integers(1, 3), N=st.integers(1, 12), C=st.integers(1, 12), seed=seeds)
def test_prefix_ready_times_matches_loops(load, B, N, C, seed):
    """Against the definition written as loops; also: never decreasing, ends at the slowest position."""
    g = gen(seed)
    reveal = torch.randint(1, C + 1, (B, N), generator=g)
    times = torch.cumsum(torch.rand(C, generator=g, dtype=torch.float64) + 0.01, 0)
    got = load(LESSON).prefix_ready_times(reveal, times)
    assert tuple(got.shape) == (B, N)
    expected = [[float(times[max(int(reveal[b, j]) for j in range(k + 1)) - 1]) for k in range(N)] for b in range(B)]
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(got.double(), latency.prefix_ready_times(reveal, times))
    assert (got[:, 1:] >= got[:, :-1]).all()


@pytest.mark.task("13.2", points=1)
def test_pareto_front_known_answer(load):
    cost = [1.0, 2.0, 3.0, 2.0, 4.0]
    loss = [5.0, 3.0, 3.0, 4.0, 1.0]
    assert list(load(LESSON).pareto_front(cost, loss)) == [0, 1, 4]


@pytest.mark.task("13.2", points=2)
@GRADED
@given(n=st.integers(1, 12), seed=seeds)
def test_pareto_front_matches_reference(load, n, seed):
    """Random points with ties (values on a coarse grid) against minidlm.latency.pareto_front."""
    g = gen(seed)
    cost = torch.randint(0, 4, (n,), generator=g).double()
    loss = torch.randint(0, 4, (n,), generator=g).double()
    got = [int(i) for i in load(LESSON).pareto_front(cost, loss)]
    assert got == latency.pareto_front(cost, loss)
