"""Tests for minidlm.reversal: the reversal-curse task."""
import re

import pytest

from minidlm import reversal
from minidlm.reversal import make_reversal_task, score_answers


@pytest.fixture(scope="module")
def task():
    return make_reversal_task(n_facts=200, seed=0)


def test_sizes_and_split(task):
    assert len(task.facts) == 200
    assert len(task.both_facts) == 100 and len(task.test_facts) == 100
    assert task.both_facts + task.test_facts == task.facts
    # 200 forward + 100 reverse statements, each 3 times
    assert len(task.train_texts) == 3 * 300
    counts = {t: task.train_texts.count(t) for t in set(task.train_texts)}
    assert set(counts.values()) == {3}


def test_names_unique_single_words_and_disjoint(task):
    persons = [p for p, _ in task.facts]
    pets = [q for _, q in task.facts]
    assert len(set(persons)) == len(set(pets)) == 200
    assert not set(persons) & set(pets)
    assert all(re.fullmatch(r"[A-Z][a-z]+", n) for n in persons + pets)
    assert not set(reversal.PERSON_NAMES) & set(reversal.PET_NAMES)


def test_test_facts_only_forward(task):
    train = set(task.train_texts)
    for person, pet in task.test_facts:
        assert f"{person} has a pet named {pet}." in train
        assert f"{pet} is the pet of {person}." not in train
        # the pet is never the first word of any training sentence
        assert not any(t.startswith(pet + " ") for t in train)


def test_both_facts_in_both_directions(task):
    train = set(task.train_texts)
    for person, pet in task.both_facts:
        assert f"{person} has a pet named {pet}." in train
        assert f"{pet} is the pet of {person}." in train


def test_queries(task):
    n = len(task.test_facts)
    assert len(task.forward_queries) == len(task.reverse_queries) == len(task.infill_queries) == n
    for (person, pet), fq, rq, iq in zip(task.test_facts, task.forward_queries,
                                         task.reverse_queries, task.infill_queries):
        assert fq == (f"{person} has a pet named", pet)
        assert rq == (f"{pet} is the pet of", person)
        assert iq == (f"___ has a pet named {pet}.", person)
        # filling the blank / completing the prompt gives the training sentence
        assert iq[0].replace(reversal.BLANK, iq[1]) in task.train_texts
        assert f"{fq[0]} {fq[1]}." in task.train_texts


def test_deterministic_and_seeded():
    a, b = make_reversal_task(50, seed=1), make_reversal_task(50, seed=1)
    assert a == b
    assert make_reversal_task(50, seed=2).facts != a.facts


def test_options():
    t = make_reversal_task(10, seed=0, n_both=0, repeats=1)
    assert len(t.train_texts) == 10 and len(t.test_facts) == 10
    t = make_reversal_task(10, seed=0, n_both=10, repeats=2)
    assert len(t.train_texts) == 40 and t.test_facts == [] and t.reverse_queries == []
    assert len(make_reversal_task(reversal.MAX_FACTS).facts) == reversal.MAX_FACTS


@pytest.mark.parametrize("kwargs, name", [
    ({"n_facts": 0}, "n_facts"),
    ({"n_facts": reversal.MAX_FACTS + 1}, "n_facts"),
    ({"n_facts": 10, "n_both": 11}, "n_both"),
    ({"n_facts": 10, "n_both": -1}, "n_both"),
    ({"repeats": 0}, "repeats"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_reversal_task(**kwargs)


def test_score_answers():
    assert score_answers([" Rudy.", "Pelo", "rudy"], ["Rudy", "Pelo.", "Rudy"]) == pytest.approx(2 / 3)
    assert score_answers(["Rudy is"], ["Rudy"]) == 0.0
    with pytest.raises(ValueError, match="predictions"):
        score_answers(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="answers"):
        score_answers([], [])
