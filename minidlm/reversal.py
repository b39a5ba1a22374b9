"""A reversal-curse task: facts learned in one direction, asked in both (lesson 13).

Each fact pairs a person with a pet. Training states every fact forward,

    "Pelo has a pet named Rudy."

and, for a share of the facts only, also in reverse,

    "Rudy is the pet of Pelo."

so a model sees the reverse sentence *format*, but for the remaining *test*
facts it never sees the reverse *statement*. A left-to-right model that learned
"Pelo has a pet named" -> "Rudy" tends to fail "Rudy is the pet of" -> ?, while a
masked diffusion model can also be asked to fill the blank in the forward
sentence it did see: "___ has a pet named Rudy." (see ``infill_queries``).

Names are made of syllables so they are single made-up words: person names end
in a, e or i, pet names end in o, u or y, so the two pools never overlap.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from ._validate import check_positive_int

FORWARD = "{person} has a pet named {pet}."
REVERSE = "{pet} is the pet of {person}."
BLANK = "___"

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _names(endings: str) -> tuple[str, ...]:
    """All consonant-vowel-consonant + ending names, e.g. 'Pelo', 'Rudy' (sorted, so stable)."""
    return tuple(sorted((c1 + v + c2 + end).capitalize()
                        for c1, v, c2, end in itertools.product(_CONSONANTS, _VOWELS, _CONSONANTS, endings)))


PERSON_NAMES: tuple[str, ...] = _names("aei")
PET_NAMES: tuple[str, ...] = _names("ouy")
MAX_FACTS = min(len(PERSON_NAMES), len(PET_NAMES))


@dataclass
class ReversalTask:
    """Training texts and evaluation queries for one reversal-curse experiment.

    ``facts`` are (person, pet) pairs; ``both_facts`` were trained in both forms,
    ``test_facts`` only forward. All queries are over ``test_facts`` and are
    (prompt, answer) pairs:

    - ``forward_queries``: ("Pelo has a pet named", "Rudy") - seen direction
    - ``reverse_queries``: ("Rudy is the pet of", "Pelo") - never-seen direction
    - ``infill_queries``: ("___ has a pet named Rudy.", "Pelo") - the reverse
      question asked inside the seen sentence (needs right-hand context)
    """

    facts: list[tuple[str, str]]
    both_facts: list[tuple[str, str]]
    test_facts: list[tuple[str, str]]
    train_texts: list[str]
    forward_queries: list[tuple[str, str]]
    reverse_queries: list[tuple[str, str]]
    infill_queries: list[tuple[str, str]]


def forward_statement(person: str, pet: str) -> str:
    return FORWARD.format(person=person, pet=pet)


def reverse_statement(person: str, pet: str) -> str:
    return REVERSE.format(person=person, pet=pet)


def make_reversal_task(n_facts: int = 200, seed: int = 0, n_both: int | None = None,
                       repeats: int = 3) -> ReversalTask:
    """Build a task with ``n_facts`` facts, ``n_both`` of them (default half) stated
    in both directions in training; each statement is repeated ``repeats`` times
    and the training texts are shuffled with ``seed``."""
    check_positive_int("n_facts", n_facts)
    if n_facts > MAX_FACTS:
        raise ValueError(f"n_facts: the name pools allow at most {MAX_FACTS} facts, got {n_facts}")
    if n_both is None:
        n_both = n_facts // 2
    if isinstance(n_both, bool) or not isinstance(n_both, int) or not 0 <= n_both <= n_facts:
        raise ValueError(f"n_both: expected an integer in [0, n_facts={n_facts}], got {n_both!r}")
    check_positive_int("repeats", repeats)

    rng = random.Random(seed)
    facts = list(zip(rng.sample(PERSON_NAMES, n_facts), rng.sample(PET_NAMES, n_facts)))
    both_facts, test_facts = facts[:n_both], facts[n_both:]

    statements = [forward_statement(person, pet) for person, pet in facts]
    statements += [reverse_statement(person, pet) for person, pet in both_facts]
    train_texts = statements * repeats
    rng.shuffle(train_texts)

    return ReversalTask(
        facts=facts,
        both_facts=both_facts,
        test_facts=test_facts,
        train_texts=train_texts,
        forward_queries=[(f"{person} has a pet named", pet) for person, pet in test_facts],
        reverse_queries=[(f"{pet} is the pet of", person) for person, pet in test_facts],
        infill_queries=[(forward_statement(BLANK, pet), person) for person, pet in test_facts],
    )


def _clean(answer: str) -> str:
    return answer.strip().rstrip(".").strip()


def score_answers(predictions: list[str], answers: list[str]) -> float:
    """Share of exact matches, ignoring surrounding spaces and a trailing '.'."""
    predictions, answers = list(predictions), list(answers)
    if len(predictions) != len(answers):
        raise ValueError(f"predictions: expected {len(answers)} items (one per answer), "
                         f"got {len(predictions)}")
    if not answers:
        raise ValueError("answers: expected at least one answer")
    return sum(_clean(p) == _clean(a) for p, a in zip(predictions, answers)) / len(answers)
