"""Graded tests, lesson 11: preparing an edit."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidlm import sampling
from tests.exercises.grading_plugin import GRADED
from tests.exercises.helpers import ToyDenoiser, assert_same, gen, seeds, tokens

LESSON = "lesson11_editing"
V, MASK = 8, 7


@pytest.mark.task("11.1", points=1)
def test_remask_span_known_answer(load):
    x = torch.tensor([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]])
    protect = torch.tensor([False, False, True, False, False])
    given_, where = load(LESSON).remask_span(x, (1, 4), MASK, protect)
    assert given_.tolist() == [[1, MASK, 3, MASK, 5], [5, MASK, 3, MASK, 1]]
    assert where.tolist() == [[False, True, False, True, False]] * 2
    assert x.tolist() == [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], "tokens must not be modified"


@pytest.mark.task("11.1", points=2)
@GRADED
@given(B=st.integers(1, 3), L=st.integers(1, 10), data=st.data(), protected=st.booleans(), seed=seeds)
def test_remask_span_matches_edit(load, B, L, data, protected, seed):
    """minidlm.sampling.edit masks the same positions and starts its sampler from your `given`."""
    i = data.draw(st.integers(0, L - 1))
    j = data.draw(st.integers(i + 1, L))
    g = gen(seed)
    x = tokens(g, B, L, V, MASK)
    protect = (torch.rand(B, L, generator=g) < 0.3) if protected else None
    if protect is not None:
        protect[:, i] = False                              # at least one position is editable
    given_, where = load(LESSON).remask_span(x, (i, j), MASK, protect)
    _, trace, ref_where = sampling.edit(ToyDenoiser(V, L, MASK, seed), x, MASK, span=(i, j), protect=protect,
                                        temperature=0.0)
    assert_same(where, ref_where, "where")
    assert_same(given_, trace.states[0], "given")
