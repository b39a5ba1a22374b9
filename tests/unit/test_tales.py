"""Tests for minidlm.tales: the tiny-tales generator and its checker."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidlm import tales
from minidlm.tales import check_story, generate_tales, score_texts

GOOD = ("There was a brave girl named Mia. One day, Mia found a red ball. "
        "Near the pond, she met a sleepy cat. She gave the ball to the cat. "
        "In the end, Mia was very happy.")


@pytest.fixture(scope="module")
def stories():
    return generate_tales(10000, seed=0)


def _sentences(story):
    return tales.split_sentences(story)


# --- generation ---------------------------------------------------------------

def test_deterministic_and_seed_dependent(stories):
    assert generate_tales(300, seed=0) == stories[:300]
    assert generate_tales(300, seed=1) != stories[:300]
    assert generate_tales(300, seed=1) == generate_tales(300, seed=1)


def test_distinct_and_large(stories):
    assert len(stories) == 10000 == len(set(stories))
    assert sum(len(s.encode()) for s in stories) >= 1_000_000
    assert 150 <= sum(map(len, stories)) / len(stories) <= 250


def test_piece_limit(stories):
    counts = [len(re.findall(r"\w+|[^\w\s]", s)) for s in stories]
    assert max(counts) <= tales.MAX_PIECES == 60


def test_format(stories):
    for s in stories:
        assert s == s.strip() and "\n" not in s and "  " not in s
        assert re.fullmatch(r"[A-Za-z ,.!]+", s), s
        assert 4 <= len(_sentences(s)) <= 7
    lengths = {len(_sentences(s)) for s in stories}
    assert lengths == {4, 5, 6, 7}


def test_vocabulary(stories):
    vocab = tales.vocabulary()
    assert vocab == set(tales.VOCAB_WORDS)
    assert 250 <= len(vocab) <= 450
    used = {w for s in stories for w in re.findall(r"\w+", s)}
    assert used <= vocab
    # only names and sentence starts are capitalized
    assert all(w.islower() or w[0].isupper() for w in vocab)


def test_template_count_and_name_pools():
    assert 25 <= len(tales.TEMPLATES) <= 40
    assert len(tales.NAMES["girl"]) == len(tales.NAMES["boy"]) == 30
    assert not set(tales.NAMES["girl"]) & set(tales.NAMES["boy"])
    # names must not clash with other words of the grammar (e.g. a capitalized "Then")
    other_words = tales.VOCAB_WORDS - tales.ALL_NAMES
    assert not {n for n in tales.ALL_NAMES if n in other_words or n.lower() in other_words}


def test_five_thousand_distinct_possible():
    assert len(set(generate_tales(5000, seed=3))) == 5000


@pytest.mark.parametrize("n", [0, -1, tales.MAX_TALES + 1])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n"):
        generate_tales(n)


# --- checker on generated stories -----------------------------------------------

def test_generated_stories_are_valid(stories):
    bad = [s for s in stories if not check_story(s)["valid"]]
    assert not bad, bad[:3]


def test_each_sentence_matches_exactly_one_template(stories):
    for s in stories[:300]:
        for sentence in _sentences(s):
            assert sum(t.regex.fullmatch(sentence) is not None for t in tales.TEMPLATES) == 1, sentence


def test_good_story_report():
    r = check_story(GOOD)
    assert r == {"sentences": 5, "well_formed": 5, "name_consistent": True,
                 "pronoun_consistent": True, "introduced_before_use": True,
                 "has_ending": True, "valid": True}


def test_spaces_before_punctuation_are_tolerated():
    spaced = re.sub(r"([.,])", r" \1", GOOD)
    assert check_story(spaced)["valid"]


# --- corruptions ----------------------------------------------------------------

def _intro_name(first_sentence):
    return tales.parse_sentence(first_sentence).slots["Name"]


def test_name_swap_breaks_name_consistency(stories):
    tested = 0
    for s in stories[:500]:
        first, *rest = _sentences(s)
        name = _intro_name(first)
        later = " ".join(rest)
        if not re.search(rf"\b{name}\b", later):
            continue
        gender = "girl" if name in tales.NAMES["girl"] else "boy"
        other = next(n for n in tales.NAMES[gender] if n != name)
        broken = first + " " + re.sub(rf"\b{name}\b", other, later, count=1)
        r = check_story(broken)
        assert not r["name_consistent"] and not r["valid"], broken
        assert r["well_formed"] == r["sentences"]  # still grammatical, only inconsistent
        tested += 1
    assert tested > 100


def test_pronoun_swap_breaks_pronoun_consistency(stories):
    swap = {"he": "she", "she": "he", "He": "She", "She": "He", "his": "her", "His": "Her",
            "him": "her", "her": "his", "Her": "His"}
    tested = 0
    for s in stories[:500]:
        m = re.search(r"\b(he|she|He|She|his|His|him|her|Her)\b", s)
        if not m:
            continue
        broken = s[:m.start()] + swap[m.group()] + s[m.end():]
        r = check_story(broken)
        assert not r["pronoun_consistent"] and not r["valid"], broken
        tested += 1
    assert tested > 100


def test_duplicated_word_breaks_well_formedness(stories):
    for s in stories[:200]:
        broken = re.sub(r"\b(the|The|a)\b", r"\1 \1", s, count=1)
        assert broken != s
        r = check_story(broken)
        assert r["well_formed"] == r["sentences"] - 1 and not r["valid"], broken


def test_unintroduced_reference_is_detected(stories):
    tested = 0
    for s in stories[:500]:
        m = next((m for m in re.finditer(r"\b(the|The) (\w+)", s) if m.group(2) in tales.NOUNS), None)
        if m is None:
            continue
        noun = m.group(2)
        pool = tales.OBJECTS if noun in tales.OBJECTS else tales.ANIMALS
        other = next(x for x in pool if x != noun and not re.search(rf"\b{x}\b", s))
        broken = s[:m.start(2)] + other + s[m.end(2):]
        r = check_story(broken)
        assert not r["introduced_before_use"] and not r["valid"], broken
        tested += 1
    assert tested > 100


def test_other_defects():
    # a boy cannot be named Mia: the introduction is not well formed
    r = check_story("There was a brave boy named Mia. " + GOOD.split(". ", 1)[1])
    assert r["well_formed"] == 4 and not r["valid"]
    no_ending = GOOD.rsplit(" In the end", 1)[0]
    r = check_story(no_ending)
    assert not r["has_ending"] and not r["valid"] and r["well_formed"] == 4
    masked = GOOD.replace("red ball", "[MASK] ball")
    assert check_story(masked)["well_formed"] == 4
    assert not check_story("There was a brave girl named Mia. In the end, Mia was very happy.")["valid"]
    r = check_story("")
    assert r["sentences"] == 0 and r["well_formed"] == 0 and not r["valid"]


@settings(deadline=None, max_examples=50)
@given(st.text())
def test_checker_never_crashes(text):
    r = check_story(text)
    assert 0 <= r["well_formed"] <= r["sentences"]
    assert all(isinstance(r[k], bool) for k in ("name_consistent", "pronoun_consistent",
                                                 "introduced_before_use", "has_ending", "valid"))
    assert not r["valid"]


@settings(deadline=None, max_examples=50)
@given(st.lists(st.sampled_from(sorted(tales.VOCAB_WORDS) + [".", ",", "[MASK]"]), max_size=70))
def test_checker_never_crashes_on_vocabulary_soup(words):
    r = check_story(" ".join(words))
    assert 0 <= r["well_formed"] <= r["sentences"]


# --- aggregation ----------------------------------------------------------------

def test_score_texts_hand_built():
    other = GOOD.replace("Mia", "Tom").replace("girl", "boy").replace("she", "he") \
        .replace("She", "He")
    broken = GOOD.replace("She gave", "He gave")          # pronoun wrong, still well formed
    texts = [GOOD, other, broken, "the the."]
    r = score_texts(texts)
    assert r["n"] == 4
    assert r["valid"] == pytest.approx(2 / 4)
    assert r["well_formed_sentences"] == pytest.approx(15 / 16)
    assert r["name_consistent"] == pytest.approx(3 / 4)
    assert r["pronoun_consistent"] == pytest.approx(2 / 4)
    # GOOD and broken share the first sentence
    assert r["distinct_openings"] == pytest.approx(3 / 4)
    expected_pieces = [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]
    assert r["mean_words"] == pytest.approx(sum(expected_pieces) / 4)
    assert expected_pieces[-1] == 3


def test_score_texts_empty_raises():
    with pytest.raises(ValueError, match="texts"):
        score_texts([])
