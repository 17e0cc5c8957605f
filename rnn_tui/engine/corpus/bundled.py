"""The three bundled toy corpora, generated in code from a seed so a run can be repeated
exactly and no data files have to ship with the package:

- ``grammar``: an Elman (1990)-style toy language of a few dozen words in categories, so the
  hidden states can be seen to cluster by category.
- ``parity``: Elman's temporal XOR, a task whose label is not the next token.
- ``agreement``: subject-verb agreement across a distractor clause of controllable length.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..agreement_text import NOUN_PAIRS, PRONOUN_PAIRS, VERB_FORMS
from ..errors import ConfigError
from .base import Corpus, train_val_split
from .vocab import Vocab

# The toy languages' alphabet. Their char vocab is all of it, not just the letters the
# sentences happen to use, so an unseen word such as "zog" can still be encoded and probed.
TOY_ALPHABET = " .abcdefghijklmnopqrstuvwxyz"


def _text_corpus(name, text, level, val_fraction, categories, description, examples,
                 vocab: Vocab | None = None, bpe_vocab: int | None = None) -> Corpus:
    if vocab is None and level == "char":
        vocab = Vocab(tokens=tuple(sorted(set(TOY_ALPHABET) | set(text))), level="char")
    elif vocab is None:
        vocab = Vocab.build(text, level, bpe_vocab=bpe_vocab)
    ids, _, _ = vocab._ids(text, "unk")
    train, val, _, _ = train_val_split(f"corpus {name!r}", ids, val_fraction)
    return Corpus(
        name=name,
        vocab=vocab,
        train=train,
        val=val,
        categories=categories,
        description=description,
        examples=examples,
    )



# --------------------------------------------------------------------------------------------
# grammar: Elman (1990), "Finding structure in time", section on word categories

GRAMMAR_LEXICON: dict[str, tuple[str, ...]] = {
    "NOUN_HUMAN": tuple(sg for sg, _ in NOUN_PAIRS[:4]),
    "NOUN_ANIMAL": tuple(sg for sg, _ in NOUN_PAIRS[4:]),
    "NOUN_HUMAN_PL": tuple(pl for _, pl in NOUN_PAIRS[:4]),
    "NOUN_ANIMAL_PL": tuple(pl for _, pl in NOUN_PAIRS[4:]),
    "NOUN_FOOD": ("cookie", "bread", "sandwich"),
    "NOUN_OBJECT": ("book", "rock", "glass", "plate"),
    "VERB_INTRAN": ("sleeps", "thinks", "smiles"),
    "VERB_TRAN": ("sees", "chases", "likes", "smells"),
    "VERB_READ": ("reads",),
    "VERB_EAT": ("eats",),
    "VERB_BREAK": ("breaks", "smashes"),
    "VERB_PAST": ("saw", "chased", "met"),
    "ADJ": ("happy", "sad", "hungry", "tired", "small"),
    "ADVERB": ("yesterday", "today"),
    "PRONOUN_SG": tuple(sg for sg, _ in PRONOUN_PAIRS),
    "PRONOUN_PL": tuple(pl for _, pl in PRONOUN_PAIRS),
    "FUNCTION": ("the", "that", *VERB_FORMS),
}

# (weight, template). An UPPER slot draws from that lexicon category ("A|B" pools several);
# a lower slot is a literal word ("we|they" picks one). Templates name categories, never
# words, so a changed lexicon (e.g. an unseen "zog" as the only human noun) reuses them.
_SG = "NOUN_HUMAN|NOUN_ANIMAL"  # a singular subject: "was"
_PL = "NOUN_HUMAN_PL|NOUN_ANIMAL_PL"  # a plural subject: "were"
_ANY = f"{_SG}|{_PL}"  # a noun inside a relative clause: either number, so it is no clue
_PRON = "PRONOUN_SG|PRONOUN_PL"
GRAMMAR_TEMPLATES: tuple[tuple[float, str], ...] = (
    # Elman's present-tense sentences (singular subjects): who eats, reads, breaks what.
    (1.0, "the NOUN_HUMAN VERB_EAT the NOUN_FOOD"),
    (1.0, "the NOUN_HUMAN VERB_TRAN the NOUN_OBJECT"),
    (1.0, "the NOUN_HUMAN VERB_BREAK the NOUN_OBJECT"),
    (1.0, "the NOUN_HUMAN VERB_INTRAN"),
    (1.0, "the NOUN_HUMAN VERB_TRAN the NOUN_HUMAN"),
    (1.0, "the NOUN_HUMAN VERB_TRAN the NOUN_ANIMAL"),
    (1.0, "the NOUN_HUMAN VERB_READ the book"),
    (1.0, "the NOUN_ANIMAL VERB_EAT the NOUN_FOOD"),
    (1.0, "the NOUN_ANIMAL VERB_TRAN the NOUN_ANIMAL"),
    (1.0, "the NOUN_ANIMAL VERB_INTRAN"),
    (1.0, "the NOUN_ANIMAL VERB_EAT the NOUN_HUMAN"),
    (1.0, "the NOUN_ANIMAL VERB_BREAK the NOUN_OBJECT"),
    (0.75, "the NOUN_OBJECT breaks"),  # Elman's inanimate subjects ("the glass breaks")
    # Agreement across a relative clause, both numbers equally often (the app's default
    # sentence and its plural twin are typical ones). The clause's own nouns and pronouns
    # take either number, so the word just before the verb says nothing about it: only the
    # subject, four or five words back, does.
    (1.5, f"the {_SG} that {_PRON} VERB_PAST ADVERB was ADJ"),
    (1.5, f"the {_PL} that {_PRON} VERB_PAST ADVERB were ADJ"),
    (0.75, f"the {_SG} that {_PRON} VERB_PAST was ADJ"),
    (0.75, f"the {_PL} that {_PRON} VERB_PAST were ADJ"),
    (0.75, f"the {_SG} that the {_ANY} VERB_PAST ADVERB was ADJ"),
    (0.75, f"the {_PL} that the {_ANY} VERB_PAST ADVERB were ADJ"),
    (0.5, f"the {_SG} that VERB_PAST the {_ANY} was ADJ"),
    (0.5, f"the {_PL} that VERB_PAST the {_ANY} were ADJ"),
    (1.0, f"the {_SG} that VERB_TRAN the {_SG} VERB_INTRAN"),
    (0.5, f"the {_SG} was ADJ"),
    (0.5, f"the {_PL} were ADJ"),
    (0.25, "PRONOUN_SG was ADJ"),
    (0.25, "PRONOUN_PL were ADJ"),
    (0.5, f"{_PRON} VERB_PAST the {_ANY} ADVERB"),
)

GRAMMAR_SIZE = 10000
DEFAULT_SENTENCE = "the cat that we saw yesterday was happy"


def _compile_templates(lexicon: Mapping[str, Sequence[str]]) -> list[list[tuple[str, ...]]]:
    compiled = []
    for _, template in GRAMMAR_TEMPLATES:
        slots = []
        for slot in template.split():
            if slot.isupper():
                words: list[str] = []
                for cat in slot.split("|"):
                    if not lexicon.get(cat):
                        raise ConfigError(f"grammar lexicon has no words in category {cat!r}")
                    words.extend(lexicon[cat])
                slots.append(tuple(words))
            else:
                slots.append(tuple(slot.split("|")))
        compiled.append(slots)
    return compiled


def grammar_sentences(
    n: int, seed: int = 0, lexicon: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """n sentences of the toy grammar, each ending in "."; deterministic given seed and lexicon."""
    if n < 0:
        raise ConfigError(f"number of sentences must not be negative, got {n}")
    compiled = _compile_templates(GRAMMAR_LEXICON if lexicon is None else lexicon)
    weights = [w for w, _ in GRAMMAR_TEMPLATES]
    rng = random.Random(seed)
    chosen = rng.choices(range(len(compiled)), weights=weights, k=n)
    return [" ".join(rng.choice(slot) for slot in compiled[t]) + "." for t in chosen]


def grammar_categories(lexicon: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """word -> category for every lexicon word."""
    lexicon = GRAMMAR_LEXICON if lexicon is None else lexicon
    return {w: cat for cat, words in lexicon.items() for w in words}


def _grammar_corpus(level, seed, val_fraction, size, **bpe) -> Corpus:
    n = GRAMMAR_SIZE if size is None else size
    text = " ".join(grammar_sentences(n, seed))
    n_words = sum(len(w) for w in GRAMMAR_LEXICON.values())
    return _text_corpus(
        "grammar",
        text,
        level,
        val_fraction,
        grammar_categories(),
        f"Elman-style toy grammar: {n} sentences over {n_words} words in "
        f"{len(GRAMMAR_LEXICON)} categories",
        (
            DEFAULT_SENTENCE,
            "the girl reads the book",
            "the lion chases the mouse",
            "the dragon eats the man",
        ),
        **bpe,
    )


# --------------------------------------------------------------------------------------------
# parity: Elman's temporal XOR

PARITY_SIZE = 20000
PARITY_MIN_BITS = 2
PARITY_MAX_BITS = 16


def parity_stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids, targets) over the vocab (".", "0", "1"): each sequence is "." then its bits; the
    target at a bit is the parity of the bits since the last ".", the target at "." is "."."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(PARITY_MIN_BITS, PARITY_MAX_BITS + 1, size=n)
    total = int(lengths.sum()) + n
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    is_sep = np.zeros(total, dtype=bool)
    is_sep[starts] = True
    bits = rng.integers(0, 2, size=total)
    bits[is_sep] = 0
    # Running parity per sequence: a global cumulative sum minus its value at the sequence start.
    csum = np.cumsum(bits)
    seg = np.cumsum(is_sep) - 1
    parity = (csum - csum[starts][seg]) % 2
    ids = np.where(is_sep, 0, 1 + bits).astype(np.int64)
    targets = np.where(is_sep, 0, 1 + parity).astype(np.int64)
    return ids, targets


def _parity_corpus(level, seed, val_fraction, size, **bpe) -> Corpus:
    if level != "char":
        raise ConfigError("the parity corpus is character level only (tokens '.', '0', '1')")
    n = PARITY_SIZE if size is None else size
    ids, targets = parity_stream(n, seed)
    train, val, train_t, val_t = train_val_split("corpus 'parity'", ids, val_fraction, targets)
    return Corpus(
        name="parity",
        vocab=Vocab(tokens=(".", "0", "1"), level="char"),
        train=train,
        val=val,
        train_targets=train_t,
        val_targets=val_t,
        categories=None,
        description=(
            f"temporal XOR (Elman 1990): {n} bit sequences of {PARITY_MIN_BITS}-{PARITY_MAX_BITS} "
            "bits; after each bit, the target is the parity of the bits since the last '.'"
        ),
        examples=(".0110", ".1011001", ".111"),
    )


# --------------------------------------------------------------------------------------------
# agreement: subject-verb agreement across a distractor clause

AGREEMENT_SIZE = 8000
AGREEMENT_MAX_DISTRACTOR = 12

_AGR_NOUNS = (
    ("cat", "cats"), ("dog", "dogs"), ("girl", "girls"), ("boy", "boys"),
    ("man", "men"), ("woman", "women"), ("mouse", "mice"), ("lion", "lions"),
)  # fmt: skip
_AGR_PLACES = (("river", "rivers"), ("tree", "trees"), ("house", "houses"), ("garden", "gardens"))
_AGR_PRONOUNS = (("he", "she"), ("we", "they"))  # (singular, plural)
_AGR_PREPS = ("near", "with", "behind")
_AGR_PAST_INTRAN = ("slept", "waited", "played")
_AGR_PAST_TRAN = ("saw", "chased", "liked", "met")
_AGR_ADJ = ("happy", "sad", "hungry", "tired", "old", "small")
_AGR_ADV1 = ("yesterday", "today", "again")
_AGR_ADV2 = (("last", "night"), ("every", "day"))


@dataclass(frozen=True)
class AgreementItem:
    text: str  # the whole sentence, ending in "."
    prefix: str  # up to and including the space before the verb
    correct: str  # "was" or "were"
    wrong: str
    distractor_words: int  # words between "that" and the verb (0: no clause)
    plural: bool  # number of the subject


def _distractor(rng: random.Random, n: int, plural: bool, opposite: bool) -> list[str]:
    """Exactly n words after "that": a core clause, then prepositional phrases and an adverb."""

    def number() -> int:
        # "opposite" makes every noun an attractor (the hard test case). Otherwise each noun's
        # number is a coin flip, independent of the subject: a corpus where clause nouns were
        # mostly attractors would let "disagree with the last noun" stand in for memory.
        if opposite:
            return 0 if plural else 1
        return rng.randrange(2)

    core = rng.choice([c for c in (1, 2, 3) if c <= n])
    if core == 1:
        words = [rng.choice(_AGR_PAST_INTRAN)]
    elif core == 2:
        words = [rng.choice(_AGR_PRONOUNS[number()]), rng.choice(_AGR_PAST_TRAN)]
    elif rng.random() < 0.5:
        words = ["the", rng.choice(_AGR_NOUNS)[number()], rng.choice(_AGR_PAST_TRAN)]
    else:
        words = [rng.choice(_AGR_PAST_TRAN), "the", rng.choice(_AGR_NOUNS)[number()]]
    # Any remainder is reachable: k phrases of 3 words, then an adverb of 1 or 2 words.
    rest = n - core
    for _ in range(rest // 3):
        words += [rng.choice(_AGR_PREPS), "the", rng.choice(_AGR_PLACES)[number()]]
    if rest % 3 == 1:
        words.append(rng.choice(_AGR_ADV1))
    elif rest % 3 == 2:
        words.extend(rng.choice(_AGR_ADV2))
    return words


def _agreement_item(rng: random.Random, n: int, plural: bool, opposite: bool) -> AgreementItem:
    subject = rng.choice(_AGR_NOUNS)[int(plural)]
    words = ["the", subject]
    if n > 0:
        words += ["that", *_distractor(rng, n, plural, opposite)]
    prefix = " ".join(words) + " "
    correct, wrong = ("were", "was") if plural else ("was", "were")
    text = f"{prefix}{correct} {rng.choice(_AGR_ADJ)}."
    return AgreementItem(text, prefix, correct, wrong, n, plural)


def agreement_items(
    distractor_words: int, n: int, seed: int = 0, *, opposite: bool = True
) -> list[AgreementItem]:
    """n test sentences with exactly ``distractor_words`` words between "that" and the verb,
    half singular and half plural subjects. With ``opposite`` (the default, the hard case)
    every noun and pronoun in the clause has the other number from the subject."""
    if distractor_words < 0:
        raise ConfigError(f"distractor_words must not be negative, got {distractor_words}")
    if n < 0:
        raise ConfigError(f"number of items must not be negative, got {n}")
    rng = random.Random(seed)
    return [_agreement_item(rng, distractor_words, i % 2 == 1, opposite) for i in range(n)]


def agreement_categories() -> dict[str, str]:
    cats: dict[str, str] = {"the": "FUNCTION", "that": "FUNCTION", "was": "VERB_SG", "were": "VERB_PL"}
    for sg, pl in _AGR_NOUNS + _AGR_PLACES:
        cats[sg], cats[pl] = "NOUN_SG", "NOUN_PL"
    for w in _AGR_PRONOUNS[0]:
        cats[w] = "PRON_SG"
    for w in _AGR_PRONOUNS[1]:
        cats[w] = "PRON_PL"
    for w in _AGR_PAST_INTRAN + _AGR_PAST_TRAN:
        cats[w] = "VERB_PAST"
    for w in _AGR_PREPS:
        cats[w] = "PREP"
    for w in _AGR_ADJ:
        cats[w] = "ADJ"
    for w in _AGR_ADV1 + tuple(w for pair in _AGR_ADV2 for w in pair):
        cats[w] = "ADVERB"
    return cats


def _agreement_corpus(level, seed, val_fraction, size, **bpe) -> Corpus:
    n = AGREEMENT_SIZE if size is None else size
    rng = random.Random(seed)
    sentences = [
        _agreement_item(rng, rng.randint(0, AGREEMENT_MAX_DISTRACTOR), rng.random() < 0.5, False).text
        for _ in range(n)
    ]
    return _text_corpus(
        "agreement",
        " ".join(sentences),
        level,
        val_fraction,
        agreement_categories(),
        f"subject-verb agreement: {n} sentences, 0-{AGREEMENT_MAX_DISTRACTOR} distractor words "
        "between the subject and 'was'/'were'",
        (
            "the cat that we saw yesterday was happy",
            "the cats that the dogs chased near the river were happy",
        ),
        **bpe,
    )


_BUILDERS = {"grammar": _grammar_corpus, "parity": _parity_corpus, "agreement": _agreement_corpus}
BUNDLED_CORPORA = tuple(_BUILDERS)


def bundled_corpus(name: str, level: str, seed: int, val_fraction: float, size: int | None,
                   vocab: Vocab | None = None, bpe_vocab: int | None = None) -> Corpus:
    """One of BUNDLED_CORPORA, generated from its seed (size: sentences, or parity sequences).
    Level bpe: a tokenizer trained on it (at most `bpe_vocab` pieces), or `vocab`'s."""
    return _BUILDERS[name](level, seed, val_fraction, size, vocab=vocab, bpe_vocab=bpe_vocab)
