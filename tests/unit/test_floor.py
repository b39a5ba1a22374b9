"""Tests for minidlm.floor: the exact log-probability of a tiny tale and the entropy floor."""
import json
import math
import random
from collections import Counter
from itertools import permutations, product
from pathlib import Path

import pytest

from minidlm import tales
from minidlm.floor import corpus_entropy, floor_nats_per_token, story_log_prob

CARD = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "tales-ar-nano" / "card.json"


@pytest.fixture(scope="module")
def entropy():
    return corpus_entropy(3000, seed=1)


# --- a hand-computed story ----------------------------------------------------

def _brute_force_reject(cast, fixed, n):
    """q_n by brute force: every ordered n-tuple of middles and every spot/feeling of every
    sentence, filled and counted; the share of attempts longer than MAX_PIECES."""
    def lengths(t):   # one entry per equally likely (spot, feeling) draw of this sentence
        return [len(tales.pieces(t.fill({**cast, "spot": s, "feeling": f})))
                for s in tales.SPOTS for f in tales.FEELINGS]
    fixed_total = Counter({0: 1})
    for t in fixed:
        fixed_total = Counter({a + b: c * d for a, c in fixed_total.items() for b, d in Counter(lengths(t)).items()})
    too_long = total = 0
    for mids in permutations(tales._BY_KIND["middle"], n):
        for parts in product(fixed_total.items(), *(Counter(lengths(t)).items() for t in mids)):
            weight = math.prod(c for _, c in parts)
            total += weight
            too_long += weight * (sum(x for x, _ in parts) > tales.MAX_PIECES)
    return too_long / total


def test_hand_computed_story():
    story = ("Once there was a girl named Mia who lived near the river. "
             "One morning, she saw a red ball near the pond. Then she heard a cat crying. "
             "The cat was sad, so Mia sang a song. In the end, Mia was very happy.")
    T = {t.text: t for t in tales.TEMPLATES}
    intro = T["Once there was a {kid} named {Name} who lived {home}."]
    obj_t = T["One morning, {he} saw {a_obj} {spot}."]
    animal_t = T["Then {he} heard {a_animal} crying."]
    ending = T["In the end, {Name} was very {feeling}."]
    # kid_adj and relative are drawn but never shown: any value gives this story
    cast = {"Name": "Mia", "kid": "girl", **tales.PRONOUNS["girl"], "kid_adj": "shy",
            "home": "near the river", "relative": "aunt", "obj": "ball", "a_obj": "a red ball",
            "animal": "cat", "a_animal": "a cat"}
    p = (1 / 2 * 1 / 30 * 1 / 8           # girl, Mia, home
         * 1 / 16 * 0.6 / 9 * 1 / 18 * 0.4  # ball, red, cat, no adjective
         * 1 / 5 * 1 / 4 * 1 / 4 * 1 / 2 * 1 / 6   # intro, object, animal templates, order, ending
         * 1 / 15                           # the one middle sentence
         * 1 / 8 * 1 / 5)                   # the spot of sentence 2, the feeling of the ending
    q = [_brute_force_reject(cast, [intro, obj_t, animal_t, ending], n) for n in range(4)]
    assert q[0] == q[1] == 0 and 0 < q[2] < 1 and q[3] == 1   # 3 middles never fit this cast
    # P(an attempt with 1 middle is made): n0 = 1 (5 tries), or n0 = 2, 3 after 5 failures each
    tries = sum(q[1] ** i for i in range(5))
    reach = 1 / 4 * (tries + q[2] ** 5 * tries + q[3] ** 5 * q[2] ** 5 * tries)
    assert story_log_prob(story) == pytest.approx(math.log(p * reach), abs=1e-9)


# --- properties on the real grammar -------------------------------------------

def test_log_probs_finite_negative_deterministic():
    stories = tales.generate_tales(300, seed=3)
    lps = [story_log_prob(s) for s in stories]
    assert all(math.isfinite(x) and x < 0 for x in lps)
    assert [story_log_prob(s) for s in stories[:50]] == lps[:50]
    assert sum(math.exp(x) for x in lps) < 1


def test_outside_the_support():
    good = ("There was a brave girl named Mia. One day, Mia found a red ball. "
            "Near the pond, she met a sleepy cat. She gave the ball to the cat. "
            "In the end, Mia was very happy.")
    assert math.isfinite(story_log_prob(good))
    bad = [good.replace("She gave", "He gave"),                 # pronoun of the other gender
           good.replace("to the cat", "to the dog"),            # an animal never introduced
           good.replace("In the end, Mia", "In the end, Tom"),  # a second name
           good.replace("named Mia", "named Tom"),              # a boy's name for a girl
           good.replace("She gave the ball to the cat.",        # rng.sample never repeats a middle
                        "She gave the ball to the cat. She gave the ball to the cat."),
           good.replace("One day, Mia found a red ball. ", ""),  # no object
           good[:-1], good + " The end.", "", "Mia."]
    for text in bad:
        assert story_log_prob(text) == -math.inf, text
    assert math.isfinite(story_log_prob(good.replace("She gave the ball to the cat. ", "")))
    with pytest.raises(ValueError, match="story"):
        story_log_prob(None)


def _visible_fillings(t):
    """Every sentence template t can produce, each with the slot values it shows."""
    slots = tales._SLOT_RE.findall(t.text)
    free = [s for s in slots if s not in ("Name", "kid", "he", "him", "his")]
    for gender in ("girl", "boy"):
        for name in tales.NAMES[gender]:
            for combo in product(*(tales.SLOTS[s] for s in free)):
                values = {"Name": name, "kid": gender, **tales.PRONOUNS[gender], **dict(zip(free, combo))}
                yield t.fill(values), tuple((s, values[s]) for s in slots)


def test_distinct_choices_give_distinct_sentences():
    """No two (template, shown slot values) of one sentence role give the same text, and no
    filler holds a '.': a story splits into sentences and parses back into its choices in one
    way only, so p(story) is the probability of one choice path, not a sum over several."""
    assert not any("." in f for fillers in tales.SLOTS.values() for f in fillers)
    assert all(t.text.count(".") == 1 and t.text.endswith(".") for t in tales.TEMPLATES)
    for kinds in (("intro",), ("object", "animal"), ("middle",), ("ending",)):
        seen = {}
        for kind in kinds:
            for t in tales._BY_KIND[kind]:
                for text, shown in _visible_fillings(t):
                    assert seen.setdefault(text, (t.text, shown)) == (t.text, shown), text
    # the gender is always spelled out: every intro names the kid ("girl"/"boy") and the name
    assert all({"kid", "Name"} <= set(tales._SLOT_RE.findall(t.text)) for t in tales._BY_KIND["intro"])


# --- a tiny grammar: exact enumeration against the generator itself ------------

TINY_TEXTS = {
    "intro": ("There was a {kid_adj} {kid} named {Name}.",
              "Once there was a {kid} named {Name} who lived {home}."),
    "object": ("One day, {Name} found {a_obj}.", "One morning, {he} saw {a_obj} {spot}."),
    "animal": ("Then {he} heard {a_animal} crying.", "{Name} met {a_animal} on the way home."),
    "middle": ("Every day, {Name} walked with the {animal} {spot}.", "{Name} smiled at the {animal}.",
               "{his} {relative} said that the {animal} could stay."),
    "ending": ("In the end, {Name} was very {feeling}.", "{Name} would never forget the {animal}."),
}


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the grammar so every story can be listed; MAX_PIECES = 52 makes rejection common."""
    by_text = {t.text: t for t in tales.TEMPLATES}
    for name, value in dict(
            NAMES={"girl": ("Mia",), "boy": ("Tom",)}, KID_ADJECTIVES=("brave", "shy"),
            HOMES=("near the river", "in a small town"), SPOTS=("near the pond", "under a big tree"),
            OBJECTS=("ball",), OBJECT_ADJECTIVES=("red",), ANIMALS=("owl",), ANIMAL_ADJECTIVES=("old",),
            RELATIVES=("mom", "grandma"), FEELINGS=("happy", "glad"), MAX_PIECES=52, MAX_MIDDLE=2,
            _BY_KIND={k: tuple(by_text[x] for x in v) for k, v in TINY_TEXTS.items()}).items():
        monkeypatch.setattr(tales, name, value)


def _tiny_support():
    """Every story the tiny grammar can give, by filling all choices (no parsing)."""
    K = tales._BY_KIND
    out = set()
    for gender in ("girl", "boy"):
        for name, kid_adj, home, relative, oadj, aadj in product(
                tales.NAMES[gender], tales.KID_ADJECTIVES, tales.HOMES, tales.RELATIVES,
                (None, *tales.OBJECT_ADJECTIVES), (None, *tales.ANIMAL_ADJECTIVES)):
            cast = {"Name": name, "kid": gender, **tales.PRONOUNS[gender], "kid_adj": kid_adj,
                    "home": home, "relative": relative, "obj": "ball", "a_obj": tales.with_article("ball", oadj),
                    "animal": "owl", "a_animal": tales.with_article("owl", aadj)}
            for intro, o, a, end, swap in product(K["intro"], K["object"], K["animal"], K["ending"], (0, 1)):
                meet = [a, o] if swap else [o, a]
                for k in range(tales.MAX_MIDDLE + 1):
                    for mids in permutations(K["middle"], k):
                        options = [{t.fill({**cast, "spot": s, "feeling": f})
                                    for s in tales.SPOTS for f in tales.FEELINGS}
                                   for t in [intro, *meet, *mids, end]]
                        for sentences in product(*options):
                            story = " ".join(sentences)
                            if len(tales.pieces(story)) <= tales.MAX_PIECES:
                                out.add(story)
    return out


def test_tiny_grammar_exact(tiny):
    support = _tiny_support()
    p = {s: math.exp(story_log_prob(s)) for s in support}
    assert all(v > 0 for v in p.values())
    # the probabilities of all possible stories add up to 1: nothing counted twice (unused
    # choices) and the mass of rejected attempts is given back to the accepted stories
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-9)

    # the generator's own frequencies agree: chi-square over bins (middles, length)
    rng, n = random.Random(7), 40000
    drawn = Counter(tales._generate_story(rng) for _ in range(n))
    assert set(drawn) <= support

    def key(s):
        return (len(tales.split_sentences(s)), len(tales.pieces(s)))
    expected, observed = Counter(), Counter()
    for s, v in p.items():
        expected[key(s)] += n * v
    for s, c in drawn.items():
        observed[key(s)] += c
    small = [b for b in expected if expected[b] < 20]
    for b in small:   # lump sparse bins together
        expected["rest"] += expected.pop(b)
        observed["rest"] += observed.pop(b, 0)
    chi2 = sum((observed[b] - e) ** 2 / e for b, e in expected.items())
    df = len(expected) - 1
    assert df >= 10 and chi2 < df + 6 * math.sqrt(2 * df), (chi2, df)
    # and story by story for the likeliest stories
    for s, v in sorted(p.items(), key=lambda kv: -kv[1])[:20]:
        assert abs(drawn[s] - n * v) < 5 * math.sqrt(n * v)

    # the Monte Carlo entropy agrees with the exact one
    exact = -sum(v * math.log(v) for v in p.values())
    est = corpus_entropy(4000, seed=11)
    assert abs(est["nats"] - exact) < 4 * est["se_nats"]


# --- the entropy and the floor --------------------------------------------------

def test_entropy_stable_across_seeds(entropy):
    other = corpus_entropy(3000, seed=2)
    assert abs(entropy["nats"] - other["nats"]) < 4 * math.hypot(entropy["se_nats"], other["se_nats"])
    assert 20 < entropy["nats"] < 40 and entropy["se_nats"] < 0.1
    assert entropy["bits"] == pytest.approx(entropy["nats"] / math.log(2))


def test_floor_below_the_shipped_model(entropy):
    f = floor_nats_per_token(64, entropy=entropy)
    assert f["counted_tokens"] == 63
    assert f["nats_per_token"] == pytest.approx(entropy["nats"] / 63)
    val_loss = json.loads(CARD.read_text())["val_loss"]
    # a model's cross-entropy is >= the entropy: the trained model sits above the floor
    assert f["nats_per_token"] + 4 * f["se"] < val_loss
    assert f["nats_per_token"] > 0.8 * val_loss   # and the floor is not trivially low


def test_rows_carry_exactly_the_story():
    """One BPE token per word or mark, so a story takes <= 60 tokens and a 64-token row never
    skips or cuts it; [BOS] story [EOS] ... decodes back to the story."""
    from minidlm.data import load_tales_tokenizer, pad_documents
    tok = load_tales_tokenizer("bpe")
    stories = tales.generate_tales(200, seed=5)
    ids = [tok.encode(s) for s in stories]
    assert all(len(i) == len(tales.pieces(s)) <= tales.MAX_PIECES for i, s in zip(ids, stories))
    starts = {w for t in tales._BY_KIND["intro"] for w in t.first_words}   # a story's first word
    assert all(len(tok.encode(w)) == 1 for w in starts)
    assert all(len(tok.encode(" " + w)) == 1 for w in tales.VOCAB_WORDS - {"Long", "Once", "There"})
    rows = pad_documents(ids, 64, tok.bos_id, tok.eos_id)                # (200, 64)
    for row, s in zip(rows.tolist(), stories):
        first = row.index(tok.eos_id)
        assert set(row[first:]) == {tok.eos_id}
        assert tok.decode(row[1:first]) == s


def test_argument_checks(entropy):
    with pytest.raises(ValueError, match="L"):
        floor_nats_per_token(61, entropy=entropy)
    with pytest.raises(ValueError, match="L"):
        floor_nats_per_token(True, entropy=entropy)
    with pytest.raises(ValueError, match="entropy"):
        floor_nats_per_token(64, entropy={"nats": 1.0})
    with pytest.raises(ValueError, match="n"):
        corpus_entropy(1)
    with pytest.raises(ValueError, match="seed"):
        corpus_entropy(10, seed="0")
