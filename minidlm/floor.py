"""The floor: the best validation loss any model can reach on tiny tales (lessons 01 and 06).

Tiny tales come from a known random program (:func:`minidlm.tales.generate_tales`), so the
probability of a story is computable exactly and the entropy H(story) = E[-log p(story)] can be
estimated without bias by averaging -log p over the generator's own samples. A model's
cross-entropy on fresh stories is >= H (Gibbs), and an MDM's NELBO is >= its NLL, so
H / (L - 1) nats per counted token is a floor no learning curve can cross.

How p(story) is computed (:func:`story_log_prob`), from the text alone:

* The text is parsed back into its choices. Every choice the text depends on is visible and
  recoverable (tests/unit/test_floor.py checks by enumeration that no two templates or fillers
  of one sentence role give the same sentence, and the gender is always spelled out by the
  introduction's ``{kid}``), so distinct choice paths give distinct stories: p(story) is the
  probability of its visible choices, not a sum over look-alikes.
* Choices that leave no trace are not counted: a cast field no chosen template uses (``kid_adj``,
  ``home``, ``relative``), and the ``spot``/``feeling`` drawn for a sentence without that slot.
* Rejection: ``_generate_story`` redraws the middle sentences (and every sentence's spot and
  feeling) while the story is longer than MAX_PIECES, dropping one middle sentence after every
  five failures. The failure probability q_n of an attempt with n middles is computed exactly by
  enumerating middle lengths, and p sums over the attempts at which the story could be accepted
  and over the initial number of middles.
* ``generate_tales`` also drops duplicates: the corpus is distinct draws of this p. That changes
  the floor by at most -log(1 - p(corpus)), negligible (benchmarks/tales_floor.py measures it).
"""
from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from itertools import combinations

from . import tales
from ._validate import check_positive_int

_ATTEMPTS = 99          # mirrors `for attempt in range(1, 100)` in tales._generate_story
_TRIES_PER_COUNT = 5    # mirrors `if attempt % 5 == 0: n_middle -= 1`
_REDRAWN = ("spot", "feeling")   # slots drawn afresh for every sentence of every attempt
_PRONOUN_SLOTS = ("he", "him", "his")


def _domains() -> dict:
    """The filler sets the generator draws from now (read at call time, so a test can shrink them)."""
    return {"kid": ("girl", "boy"), "kid_adj": tales.KID_ADJECTIVES, "home": tales.HOMES,
            "relative": tales.RELATIVES, "obj": tales.OBJECTS, "animal": tales.ANIMALS,
            "spot": tales.SPOTS, "feeling": tales.FEELINGS}


def _length_dist(values) -> dict:
    """{pieces: probability} of one uniform draw from ``values``."""
    c = Counter(len(tales.pieces(v)) for v in values)
    return {k: v / len(values) for k, v in c.items()}


def _convolve(a: dict, b: dict) -> dict:
    out: dict = {}
    for x, p in a.items():
        for y, q in b.items():
            out[x + y] = out.get(x + y, 0.0) + p * q
    return out


def _slots(t) -> list:
    return tales._SLOT_RE.findall(t.text)


class _Tables:
    """Everything that depends on the grammar only: length distributions of the redrawn slots
    and of n middle sentences, and a cache of the rejection terms."""

    def __init__(self):
        self.key = _grammar_key()
        by_kind = tales._BY_KIND
        self.max_middle, self.max_pieces = tales.MAX_MIDDLE, tales.MAX_PIECES
        self.redrawn = {"spot": _length_dist(tales.SPOTS), "feeling": _length_dist(tales.FEELINGS)}
        fixed_len = {"Name": [n for g in tales.NAMES.values() for n in g],
                     "obj": tales.OBJECTS, "animal": tales.ANIMALS, "relative": tales.RELATIVES,
                     **{s: [p[s] for p in tales.PRONOUNS.values()] for s in _PRONOUN_SLOTS}}
        dists = []
        for t in by_kind["middle"]:          # pieces of one middle sentence: literal + slots
            d = {len(tales.pieces(tales._SLOT_RE.sub("", t.text))): 1.0}
            for s in _slots(t):
                if s in self.redrawn:
                    d = _convolve(d, self.redrawn[s])
                    continue
                lengths = {len(tales.pieces(v)) for v in fixed_len[s]}
                if len(lengths) != 1:        # would make q depend on the cast: not handled
                    raise NotImplementedError(f"middle slot {s!r} has fillers of different lengths")
                d = _convolve(d, {lengths.pop(): 1.0})
            dists.append(d)
        self.middle = []                     # middle[n]: {pieces: prob} of n distinct middles
        for n in range(self.max_middle + 1):
            combos = list(combinations(range(len(dists)), n))
            total: dict = {}
            for c in combos:                 # sample() is uniform over ordered tuples; the sum
                d = {0: 1.0}                 # of lengths ignores the order
                for i in c:
                    d = _convolve(d, dists[i])
                for k, p in d.items():
                    total[k] = total.get(k, 0.0) + p / len(combos)
            self.middle.append(total)
        self._log_accept: dict = {}

    def reject_probs(self, base: int, n_redrawn: tuple) -> list:
        """q_n, n = 0..MAX_MIDDLE: chance that one attempt with n middles is too long, when the
        fixed sentences have ``base`` pieces besides ``n_redrawn`` = (spots, feelings) slots."""
        extra = {0: 1.0}
        for slot, count in zip(_REDRAWN, n_redrawn):
            for _ in range(count):
                extra = _convolve(extra, self.redrawn[slot])
        return [sum(p for x, p in _convolve(extra, m).items() if base + x > self.max_pieces)
                for m in self.middle]

    def log_accept(self, base: int, n_redrawn: tuple) -> list:
        """log P(the story is accepted at an attempt with k middles), k = 0..MAX_MIDDLE, summed
        over the first draw n0 = randint(0, MAX_MIDDLE) and the attempts with k middles."""
        key = (base, n_redrawn)
        if key not in self._log_accept:
            q = self.reject_probs(base, n_redrawn)
            reach_k = [0.0] * (self.max_middle + 1)
            for n0 in range(self.max_middle + 1):
                reach, n = 1.0 / (self.max_middle + 1), n0
                for attempt in range(1, _ATTEMPTS + 1):
                    reach_k[n] += reach      # P(attempt is made with n middles)
                    reach *= q[n]
                    if attempt % _TRIES_PER_COUNT == 0:
                        n = max(0, n - 1)
            self._log_accept[key] = [math.log(r) if r > 0 else -math.inf for r in reach_k]
        return self._log_accept[key]


_TABLES: list = [None]


def _grammar_key() -> tuple:
    """Identity of every grammar table the tables read: a test that swaps one rebuilds them."""
    return (id(tales._BY_KIND), id(tales.SPOTS), id(tales.FEELINGS), id(tales.NAMES), id(tales.OBJECTS),
            id(tales.ANIMALS), id(tales.RELATIVES), id(tales.PRONOUNS), tales.MAX_MIDDLE, tales.MAX_PIECES)


def _tables() -> _Tables:
    t = _TABLES[0]
    if t is None or t.key != _grammar_key():
        t = _TABLES[0] = _Tables()
    return t


def _article_lookup(nouns, adjectives) -> dict:
    """'a red ball' -> ('ball', 'red'); 'an owl' -> ('owl', None)."""
    return {tales.with_article(n, a): (n, a) for n in nouns for a in (None, *adjectives)}


def _parse(sentence: str, kinds) -> tuple | None:
    """(template, {slot: value}) for the first template of ``kinds`` that matches the sentence."""
    for kind in kinds:
        for t in tales._BY_KIND[kind]:
            m = t.regex.fullmatch(sentence)
            if m:
                values = m.groupdict()
                for s in values:             # undo the capital of a slot at the sentence start
                    if s != "Name" and t.text.startswith("{" + s + "}"):
                        values[s] = values[s][:1].lower() + values[s][1:]
                return t, values
    return None


def story_log_prob(story: str) -> float:
    """log p(story) in nats under tiny tales' generator (lesson 01), exact; -inf for any text the
    generator cannot produce. Counts only the choices the text shows, and includes the
    renormalization by the generator's too-long rejection. See the module docstring."""
    if not isinstance(story, str):
        raise ValueError(f"story: expected a str, got {type(story).__name__}")
    tab = _tables()
    if not story.endswith(".") or len(tales.pieces(story)) > tab.max_pieces:
        return -math.inf
    sentences = [s + "." for s in story[:-1].split(". ")]
    k = len(sentences) - 4                   # intro, two meets, k middles, ending
    if not 0 <= k <= tab.max_middle:
        return -math.inf
    roles = [("intro",), ("object", "animal"), ("object", "animal"), *[("middle",)] * k, ("ending",)]
    parses = [_parse(s, r) for s, r in zip(sentences, roles)]
    if any(p is None for p in parses):
        return -math.inf
    templates = [p[0] for p in parses]
    if {templates[1].kind, templates[2].kind} != {"object", "animal"}:
        return -math.inf
    if len(set(templates[3:3 + k])) != k:    # rng.sample: no middle twice
        return -math.inf
    if "kid" not in parses[0][1] or "Name" not in parses[0][1]:
        raise NotImplementedError("an intro template without {kid} and {Name}")

    dom = _domains()
    gender = parses[0][1]["kid"]
    dom["Name"] = tales.NAMES[gender]
    articles = {"a_obj": ("obj", "obj_adj", _article_lookup(tales.OBJECTS, tales.OBJECT_ADJECTIVES)),
                "a_animal": ("animal", "animal_adj",
                             _article_lookup(tales.ANIMALS, tales.ANIMAL_ADJECTIVES))}
    cast: dict = {}
    logp = 0.0
    n_redrawn = [0, 0]                       # spot and feeling slots in the fixed sentences
    base = 0                                 # pieces of the fixed sentences besides them

    def put(field, value) -> bool:           # one cast value: the same wherever it shows
        return cast.setdefault(field, value) == value

    for i, (t, values) in enumerate(parses):
        fixed = i < 3 or i == len(parses) - 1
        if fixed:
            base += len(tales.pieces(sentences[i]))
        for slot, v in values.items():
            if slot in _REDRAWN:             # drawn for this sentence alone: counted every time
                if v not in dom[slot]:
                    return -math.inf
                logp -= math.log(len(dom[slot]))
                if fixed:
                    base -= len(tales.pieces(v))
                    n_redrawn[_REDRAWN.index(slot)] += 1
            elif slot in _PRONOUN_SLOTS:     # given by the gender, no choice of its own
                if v != tales.PRONOUNS[gender][slot]:
                    return -math.inf
            elif slot in articles:
                noun_field, adj_field, lookup = articles[slot]
                if v not in lookup or not (put(noun_field, lookup[v][0]) and put(adj_field, lookup[v][1])):
                    return -math.inf
            elif v not in dom[slot] or not put(slot, v):
                return -math.inf

    # the cast: gender, then each field the text shows, once (unused fields cost nothing)
    logp -= math.log(2) + math.log(len(dom["Name"]))
    for field in ("kid_adj", "home", "relative", "obj", "animal"):
        if field in cast:
            logp -= math.log(len(dom[field]))
    for adj_field, adjectives in (("obj_adj", tales.OBJECT_ADJECTIVES),
                                  ("animal_adj", tales.ANIMAL_ADJECTIVES)):
        if adj_field in cast:                # always shown: a_obj and a_animal are in every meet
            p = tales.PROB_ADJECTIVE / len(adjectives) if cast[adj_field] else 1 - tales.PROB_ADJECTIVE
            if p <= 0:
                return -math.inf
            logp += math.log(p)
    # templates: intro, object, animal, their order (shuffle of two), ending, k ordered middles
    n_mid = len(tales._BY_KIND["middle"])
    logp -= sum(math.log(len(tales._BY_KIND[kind])) for kind in ("intro", "object", "animal", "ending"))
    logp -= math.log(2) + sum(math.log(n_mid - j) for j in range(k))
    # rejection: P(some attempt with k middles is made), over n0 and the attempts
    return logp + tab.log_accept(base, tuple(n_redrawn))[k]


def corpus_entropy(n: int = 20000, seed: int = 0) -> dict:
    """Monte Carlo estimate of H(story) = E[-log p(story)] (lesson 01): the mean of -log p over
    ``n`` stories drawn by the generator itself (with duplicates, as independent draws), so the
    estimate is unbiased. Returns nats, bits, their standard errors, n and seed."""
    check_positive_int("n", n, minimum=2)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int, got {seed!r}")
    rng = random.Random(seed)
    nll = [-story_log_prob(tales._generate_story(rng)) for _ in range(n)]   # (n,) nats
    if not all(math.isfinite(x) for x in nll):
        raise RuntimeError("a generated story got p = 0: the floor no longer matches tales.py")
    mean, se = statistics.fmean(nll), statistics.stdev(nll) / math.sqrt(n)
    return {"nats": mean, "se_nats": se, "bits": mean / math.log(2), "se_bits": se / math.log(2),
            "std_nats": statistics.stdev(nll), "n": n, "seed": seed}


def floor_nats_per_token(L: int = 64, n: int = 20000, seed: int = 0, entropy: dict | None = None) -> dict:
    """The lowest validation loss any model can reach on tiny tales, in nats per counted token
    (lessons 01 and 06): H(story) / (L - 1).

    A row is [BOS] story [EOS] ... [EOS] (``data.tales_blocks``), one story per row, and every
    minidlm loss divides by the L - 1 tokens after [BOS]. The shipped BPE is invertible and makes
    every word or mark one token, so a story has at most MAX_PIECES = 60 tokens; for L >= 62 no
    story is skipped or cut and the row carries exactly the story's information: H(row) = H(story).
    ``entropy``: a result of :func:`corpus_entropy` to reuse (else computed with ``n``, ``seed``). Returns
    ``nats_per_token``, ``se``, ``bits_per_token``, ``L``, ``counted_tokens`` and ``entropy``.
    """
    check_positive_int("L", L, minimum=2)
    if L < tales.MAX_PIECES + 2:
        raise ValueError(f"L: expected at least {tales.MAX_PIECES + 2} (a story of {tales.MAX_PIECES} "
                         f"tokens plus [BOS] and [EOS]); shorter rows skip long stories, got {L}")
    if entropy is None:
        entropy = corpus_entropy(n, seed)
    elif not isinstance(entropy, dict) or not {"nats", "se_nats"} <= set(entropy):
        raise ValueError("entropy: expected a dict from corpus_entropy with 'nats' and 'se_nats'")
    counted = L - 1
    return {"nats_per_token": entropy["nats"] / counted, "se": entropy["se_nats"] / counted,
            "bits_per_token": entropy["bits"] / counted, "L": L, "counted_tokens": counted,
            "entropy": entropy}
