"""Tiny tales: a synthetic story corpus and the checker that grades it (taught in lesson 01).

Every story is built from a small grammar of sentence *templates* with *slots*:

    "One day, {Name} found {a_obj}."   ->   "One day, Mia found a red ball."

A story has a fixed plot: an introduction (a named boy or girl), an object and
an animal being introduced (in either order), zero to three middle sentences
that may only talk about what was already introduced, and an ending. That gives
the corpus long-range structure a small model has to learn: the same name all
the way through, pronouns that agree with the character's gender, and "the cat"
only after "a cat" was met.

Because the grammar is known exactly, :func:`check_story` can grade *any* text
(for example a diffusion model's sample) against it: each template is compiled
into a regular expression whose slots are alternations over their fillers, and a
sentence is well formed when it fully matches one of them.

Text rules: words, spaces, ``.`` and ``,`` only (no quotes, no apostrophes), one
space between sentences, and at most :data:`MAX_PIECES` words plus punctuation
marks per story so a story fits a 64-token row with [BOS] and [EOS].
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ._validate import check_positive_int

MAX_PIECES = 60          # words + punctuation marks per story (64-token row minus BOS/EOS)
MAX_TALES = 1_000_000    # generate_tales refuses more (far below what the grammar allows)
MAX_MIDDLE = 3           # middle sentences per story, so 4 to 7 sentences in all

# ---------------------------------------------------------------------------
# Vocabulary: the fillers of each slot
# ---------------------------------------------------------------------------

NAMES = {
    "girl": ("Mia", "Lily", "Emma", "Ava", "Zoe", "Ella", "Lucy", "Anna", "Sara", "Nora",
             "Ruby", "Ivy", "Maya", "Lena", "Rosa", "Grace", "Chloe", "Hana", "Julia", "Amy",
             "Kate", "Luna", "Molly", "Alice", "Clara", "Eva", "Nina", "Sofia", "Ellie", "Jane"),
    "boy": ("Tom", "Ben", "Sam", "Leo", "Max", "Jack", "Finn", "Noah", "Liam", "Owen",
            "Jake", "Luke", "Adam", "Eli", "Theo", "Oscar", "Hugo", "Felix", "Henry", "Oliver",
            "Ryan", "Tim", "Dan", "Paul", "Ivan", "Omar", "Kai", "Milo", "Toby", "Jonah"),
}
ALL_NAMES = frozenset(NAMES["girl"] + NAMES["boy"])

# Pronoun slot -> filler for each gender. "her" is both object and possessive.
PRONOUNS = {
    "girl": {"he": "she", "him": "her", "his": "her"},
    "boy": {"he": "he", "him": "him", "his": "his"},
}
GENDERED_WORDS = {"girl": frozenset({"she", "her"}), "boy": frozenset({"he", "him", "his"})}

KID_ADJECTIVES = ("brave", "little", "kind", "curious", "shy", "clever", "cheerful", "quiet")
HOMES = ("in a small town", "near the river", "by the sea", "on a farm", "in a big city",
         "near the forest", "in a little house", "in a quiet village")
SPOTS = ("near the pond", "in the park", "under a big tree", "behind the house",
         "at the beach", "in the garden", "by the river", "on the hill")
OBJECTS = ("ball", "kite", "hat", "book", "box", "drum", "cup", "blanket", "bell", "boat",
           "balloon", "key", "shell", "scarf", "basket", "umbrella")
OBJECT_ADJECTIVES = ("red", "blue", "green", "yellow", "orange", "pink", "purple", "shiny", "old")
ANIMALS = ("cat", "dog", "bird", "rabbit", "duck", "frog", "puppy", "kitten", "fox", "owl",
           "bear", "mouse", "turtle", "horse", "goat", "pig", "squirrel", "hedgehog")
ANIMAL_ADJECTIVES = ("sleepy", "tiny", "fluffy", "old", "friendly", "little", "small", "brown",
                     "white", "gray")
RELATIVES = ("mom", "dad", "grandma", "grandpa", "sister", "brother", "aunt", "uncle",
             "teacher", "friend")
FEELINGS = ("happy", "glad", "proud", "thankful", "cheerful")
NOUNS = frozenset(OBJECTS + ANIMALS)        # the things that must be introduced before "the X"
ADJECTIVES = frozenset(OBJECT_ADJECTIVES + ANIMAL_ADJECTIVES)
PROB_ADJECTIVE = 0.6                        # chance an object or animal gets an adjective


def with_article(noun: str, adjective: str | None = None) -> str:
    """'a red ball', 'an owl', 'an old hat': the indefinite article agrees with the next word."""
    phrase = f"{adjective} {noun}" if adjective else noun
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _article_phrases(nouns, adjectives) -> tuple[str, ...]:
    """Every 'a/an [adjective] noun' phrase the generator can emit."""
    return tuple(with_article(n, a) for n in nouns for a in (None, *adjectives))


# Every slot name and the strings it may hold (what the checker accepts).
SLOTS: dict[str, tuple[str, ...]] = {
    "Name": tuple(sorted(ALL_NAMES)),
    "kid": ("girl", "boy"),
    "kid_adj": KID_ADJECTIVES,
    "he": ("he", "she"),
    "him": ("him", "her"),
    "his": ("his", "her"),
    "home": HOMES,
    "spot": SPOTS,
    "a_obj": _article_phrases(OBJECTS, OBJECT_ADJECTIVES),
    "obj": OBJECTS,
    "a_animal": _article_phrases(ANIMALS, ANIMAL_ADJECTIVES),
    "animal": ANIMALS,
    "relative": RELATIVES,
    "feeling": FEELINGS,
}

# ---------------------------------------------------------------------------
# Templates, grouped by their role in the plot
# ---------------------------------------------------------------------------

# A slot at the start of a sentence is capitalized when filled ("{he}" -> "She").
TEMPLATE_TEXTS: dict[str, tuple[str, ...]] = {
    "intro": (  # must name the character and give the gender with {kid}
        "There was a {kid_adj} {kid} named {Name}.",
        "Once upon a time, a {kid_adj} {kid} called {Name} lived {home}.",
        "{Name} was a {kid_adj} {kid} who lived {home}.",
        "Long ago, there lived a {kid_adj} {kid} named {Name}.",
        "Once there was a {kid} named {Name} who lived {home}.",
    ),
    "object": (
        "One day, {Name} found {a_obj}.",
        "{his} {relative} gave {him} {a_obj}.",
        "{Name} had {a_obj} that {he} loved.",
        "One morning, {he} saw {a_obj} {spot}.",
    ),
    "animal": (
        "{spot}, {he} met {a_animal}.",
        "Later, {Name} saw {a_animal} {spot}.",
        "Then {he} heard {a_animal} crying.",
        "{Name} met {a_animal} on the way home.",
    ),
    "middle": (  # may only use the object and animal introduced before
        "{he} gave the {obj} to the {animal}.",
        "The {animal} was hungry, so {Name} shared {his} bread.",
        "The {animal} was cold, so {Name} gave it {his} coat.",
        "The {animal} was sad, so {Name} sang a song.",
        "The {animal} was lost, so {he} helped it find its home.",
        "The {animal} was scared, so {he} held it close.",
        "{Name} and the {animal} played with the {obj}.",
        "The {animal} liked the {obj} very much.",
        "{he} showed the {obj} to {his} {relative}.",
        "Every day, {Name} walked with the {animal} {spot}.",
        "It started to rain, so {Name} and the {animal} ran home.",
        "The {obj} was dirty, so {he} washed it.",
        "{his} {relative} said that the {animal} could stay.",
        "{Name} smiled at the {animal}.",
        "{Name} felt {feeling} because the {animal} was safe.",
    ),
    "ending": (
        "In the end, {Name} was very {feeling}.",
        "From that day on, {Name} and the {animal} were best friends.",
        "That night, {he} went to sleep with a big smile.",
        "{Name} would never forget the {animal}.",
        "And so, {Name} learned to always be kind.",
        "{he} hugged the {animal} and smiled.",
    ),
}

_SLOT_RE = re.compile(r"\{(\w+)\}")


def _capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass(frozen=True)
class Template:
    """One sentence template: its role (``kind``), text with slots, and compiled regex."""

    kind: str
    text: str
    regex: re.Pattern
    first_words: frozenset  # words a matching sentence can start with (for fast lookup)

    def fill(self, values: dict[str, str]) -> str:
        """Fill every slot from ``values`` and capitalize the sentence start."""
        return _capitalize(self.text.format_map(values))


def _compile(kind: str, text: str) -> Template:
    """Turn "{Name} found {a_obj}." into a regex with one named group per slot."""
    parts = _SLOT_RE.split(text)  # even indices: literal text, odd indices: slot names
    slots = parts[1::2]
    assert len(slots) == len(set(slots)), f"slot used twice in {text!r}"
    pattern, first_words = [], set()
    for i, part in enumerate(parts):
        at_start = i == 0 or (i == 1 and parts[0] == "")
        if i % 2 == 0:  # literal text, escaped as is
            pattern.append(re.escape(part))
            if i == 0 and part:
                first_words.add(re.match(r"\w+", part).group())
            continue
        fillers = SLOTS[part]
        if at_start:
            fillers = tuple(_capitalize(f) for f in fillers)
            first_words.update(f.split()[0] for f in fillers)
        # longest first, so the alternation never stops at a prefix of the right filler
        alternation = "|".join(re.escape(f) for f in sorted(fillers, key=len, reverse=True))
        pattern.append(f"(?P<{part}>{alternation})")
    return Template(kind, text, re.compile("".join(pattern)), frozenset(first_words))


TEMPLATES: tuple[Template, ...] = tuple(
    _compile(kind, text) for kind, texts in TEMPLATE_TEXTS.items() for text in texts
)
_BY_KIND = {kind: tuple(t for t in TEMPLATES if t.kind == kind) for kind in TEMPLATE_TEXTS}
_BY_FIRST_WORD: dict[str, list[Template]] = {}
for _t in TEMPLATES:
    for _w in _t.first_words:
        _BY_FIRST_WORD.setdefault(_w, []).append(_t)


def _compute_vocabulary() -> frozenset:
    """Every word (case-sensitive) that a generated story can contain."""
    words = set()
    for t in TEMPLATES:
        parts = _SLOT_RE.split(t.text)
        for i, part in enumerate(parts):
            if i % 2 == 0:
                words.update(re.findall(r"\w+", part))
            else:
                for filler in SLOTS[part]:
                    words.update(filler.split())
        words.update(t.first_words)  # capitalized sentence starts ("She", "Near", ...)
    return frozenset(words)


VOCAB_WORDS: frozenset = _compute_vocabulary()


def vocabulary() -> set[str]:
    """All words the generator can emit (case-sensitive, without punctuation)."""
    return set(VOCAB_WORDS)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------

def pieces(text: str) -> list[str]:
    """Split text into words and punctuation marks: the unit of the 60-piece limit."""
    return re.findall(r"\w+|[^\w\s]", text)


def _cast(rng: random.Random) -> dict[str, str]:
    """Choose one story's character, object, animal and other fixed slot values."""
    kid = rng.choice(("girl", "boy"))
    obj, animal = rng.choice(OBJECTS), rng.choice(ANIMALS)
    obj_adj = rng.choice(OBJECT_ADJECTIVES) if rng.random() < PROB_ADJECTIVE else None
    animal_adj = rng.choice(ANIMAL_ADJECTIVES) if rng.random() < PROB_ADJECTIVE else None
    return {
        "Name": rng.choice(NAMES[kid]), "kid": kid, "kid_adj": rng.choice(KID_ADJECTIVES),
        **PRONOUNS[kid],
        "home": rng.choice(HOMES), "relative": rng.choice(RELATIVES),
        "obj": obj, "a_obj": with_article(obj, obj_adj),
        "animal": animal, "a_animal": with_article(animal, animal_adj),
    }


def _generate_story(rng: random.Random) -> str:
    """One story: intro, object and animal (either order), 0-3 middles, ending."""
    cast = _cast(rng)
    intro = rng.choice(_BY_KIND["intro"])
    meet = [rng.choice(_BY_KIND["object"]), rng.choice(_BY_KIND["animal"])]
    rng.shuffle(meet)
    ending = rng.choice(_BY_KIND["ending"])
    n_middle = rng.randint(0, MAX_MIDDLE)
    for attempt in range(1, 100):
        middles = rng.sample(_BY_KIND["middle"], n_middle)
        # spot and feeling may change from sentence to sentence
        sentences = [t.fill({**cast, "spot": rng.choice(SPOTS), "feeling": rng.choice(FEELINGS)})
                     for t in [intro, *meet, *middles, ending]]
        story = " ".join(sentences)
        if len(pieces(story)) <= MAX_PIECES:
            return story
        if attempt % 5 == 0:  # too long five times: use one middle sentence fewer
            n_middle = max(0, n_middle - 1)
    raise AssertionError("unreachable: a story without middle sentences always fits")


def generate_tales(n: int = 10000, seed: int = 0) -> list[str]:
    """Return ``n`` distinct stories, the same list for the same ``seed``."""
    check_positive_int("n", n)
    if n > MAX_TALES:
        raise ValueError(f"n: at most {MAX_TALES} distinct tales can be generated, got {n}")
    rng = random.Random(seed)
    seen: set[str] = set()
    tales: list[str] = []
    for _ in range(20 * n + 1000):  # duplicates are rare; this bound is never reached in practice
        story = _generate_story(rng)
        if story not in seen:
            seen.add(story)
            tales.append(story)
            if len(tales) == n:
                return tales
    raise ValueError(f"n: could only make {len(tales)} distinct tales, asked for {n}")


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Parse:
    """A sentence matched to a template, with the fillers found in its slots."""

    template: Template
    slots: dict

    @property
    def kind(self) -> str:
        return self.template.kind


def normalize(text: str) -> str:
    """Single-space the text and drop spaces before punctuation, so a decoded token
    sequence like "Mia found a ball ." reads the same as "Mia found a ball."."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" (?=[.,!])", "", text)


def split_sentences(text: str) -> list[str]:
    """Split at '.' and '!' (kept); a trailing fragment without one is a sentence too."""
    return [s.strip() for s in re.findall(r"[^.!]*[.!]|[^.!]+$", text) if s.strip()]


def parse_sentence(sentence: str) -> Parse | None:
    """Match a sentence against the templates it could start like; None if none fits."""
    first = re.match(r"\w+", sentence)
    if first is None:
        return None
    for template in _BY_FIRST_WORD.get(first.group(), ()):
        m = template.regex.fullmatch(sentence)
        if m is None:
            continue
        slots = m.groupdict()
        # an introduction must give a name that fits the gender: not "a boy named Mia"
        if "kid" in slots and slots["Name"] not in NAMES[slots["kid"]]:
            continue
        return Parse(template, slots)
    return None


def _introduced_before_use(words: list[str]) -> bool:
    """Every 'the X' (X an object or animal) comes after an 'a/an [adj] X'."""
    introduced = set()
    for i, word in enumerate(words):
        low = word.lower()
        if low not in ("a", "an", "the"):
            continue
        j = i + 1
        while j < len(words) and words[j] in ADJECTIVES:  # skip "red", "sleepy", ...
            j += 1
        if j == len(words) or words[j] not in NOUNS:
            continue
        if low == "the" and words[j] not in introduced:
            return False
        introduced.add(words[j])
    return True


def check_story(text: str) -> dict:
    """Grade one text against the tiny-tales grammar; never raises on a string.

    Returns ``sentences``, ``well_formed`` (how many sentences match a template),
    ``name_consistent``, ``pronoun_consistent``, ``introduced_before_use``,
    ``has_ending``, and ``valid`` (all of those, and at least 3 sentences).
    """
    if not isinstance(text, str):
        raise ValueError(f"text: expected a str, got {type(text).__name__}")
    text = normalize(text)
    sentences = split_sentences(text)
    parses = [parse_sentence(s) for s in sentences]
    well_formed = sum(p is not None for p in parses)

    # the character: named, with a gender, in the first sentence
    intro = parses[0] if parses and parses[0] is not None and parses[0].kind == "intro" else None
    name = intro.slots["Name"] if intro else None
    gender = intro.slots["kid"] if intro else None

    words = re.findall(r"\w+", text)
    names_used = {w for w in words if w in ALL_NAMES}
    name_consistent = name is not None and names_used == {name}
    wrong_pronouns = GENDERED_WORDS["boy" if gender == "girl" else "girl"]
    pronoun_consistent = gender is not None and not any(w.lower() in wrong_pronouns for w in words)
    introduced = _introduced_before_use(words)
    has_ending = bool(parses) and parses[-1] is not None and parses[-1].kind == "ending"

    valid = (len(sentences) >= 3 and well_formed == len(sentences) and name_consistent
             and pronoun_consistent and introduced and has_ending)
    return {
        "sentences": len(sentences),
        "well_formed": well_formed,
        "name_consistent": name_consistent,
        "pronoun_consistent": pronoun_consistent,
        "introduced_before_use": introduced,
        "has_ending": has_ending,
        "valid": valid,
    }


def score_texts(texts: list[str]) -> dict:
    """Aggregate :func:`check_story` over texts (e.g. model samples).

    Shares are in [0, 1]: ``valid``, ``name_consistent``, ``pronoun_consistent``,
    ``introduced_before_use``, ``has_ending`` (per text), ``well_formed_sentences``
    (over all sentences), ``distinct_openings`` (distinct first sentences / n);
    ``mean_words`` is the mean number of pieces (words and punctuation) per text.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("texts: expected at least one text")
    reports = [check_story(t) for t in texts]
    n = len(texts)

    def share(key: str) -> float:
        return sum(bool(r[key]) for r in reports) / n

    n_sentences = sum(r["sentences"] for r in reports)
    openings = {(split_sentences(normalize(t)) or [""])[0] for t in texts}
    return {
        "n": n,
        "valid": share("valid"),
        "well_formed_sentences": (sum(r["well_formed"] for r in reports) / n_sentences
                                  if n_sentences else 0.0),
        "name_consistent": share("name_consistent"),
        "pronoun_consistent": share("pronoun_consistent"),
        "introduced_before_use": share("introduced_before_use"),
        "has_ending": share("has_ending"),
        "distinct_openings": len(openings) / n,
        "mean_words": sum(len(pieces(t)) for t in texts) / n,
    }
