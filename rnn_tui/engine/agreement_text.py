"""Subject-verb agreement in plain text: which nouns are singular or plural, where a sentence's
subject and its "was"/"were" are, and the same sentence with the subject's number flipped.

Plain Python (no torch, no numpy): the stepper flips a sentence on the event loop, and the
grammar generator (`corpus/bundled.py`) and the agreement probe (`probes/agreement.py`) take
their word lists from here, so the three never drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (singular, plural) of every noun that can be a subject in the bundled corpora.
NOUN_PAIRS: tuple[tuple[str, str], ...] = (
    ("man", "men"), ("woman", "women"), ("girl", "girls"), ("boy", "boys"),
    ("cat", "cats"), ("dog", "dogs"), ("mouse", "mice"), ("lion", "lions"),
    ("dragon", "dragons"), ("monster", "monsters"),
)  # fmt: skip
# Pronouns by number, (singular, plural): he <-> we, she <-> they when a sentence is flipped.
PRONOUN_PAIRS: tuple[tuple[str, str], ...] = (("he", "we"), ("she", "they"))
VERB_FORMS = ("was", "were")  # (singular, plural)

_NUMBER: dict[str, bool] = {}  # word -> plural?
for _sg, _pl in NOUN_PAIRS:
    _NUMBER[_sg], _NUMBER[_pl] = False, True
_FLIP: dict[str, str] = {}
for _sg, _pl in NOUN_PAIRS:
    _FLIP[_sg], _FLIP[_pl] = _pl, _sg

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class AgreementSlot:
    """Where a sentence's agreement decision is, in character offsets of the text."""

    subject: str  # the subject noun as written ("cats")
    subject_start: int
    subject_end: int  # one past its last character
    plural: bool
    verb_start: int  # where the verb word starts (the "w"); len(text) when the text stops there
    verb_written: str | None  # "was" or "were" as written, None when the text stops before it

    @property
    def correct(self) -> str:
        return VERB_FORMS[int(self.plural)]

    @property
    def wrong(self) -> str:
        return VERB_FORMS[1 - int(self.plural)]

    @property
    def number(self) -> str:
        return "plural" if self.plural else "singular"

    @property
    def agrees(self) -> bool | None:
        """Whether the written verb agrees with the subject (None when none is written)."""
        return None if self.verb_written is None else self.verb_written == self.correct


def is_plural(word: str) -> bool | None:
    """True / False for a known subject noun, None for any other word."""
    return _NUMBER.get(word.lower())


def find_agreement(text: str) -> AgreementSlot | None:
    """The first sentence of `text` whose subject noun is followed by "was" or "were".

    The subject is the first known noun of its sentence (sentences end at "."); the verb slot
    is the first "was"/"were" after it in the same sentence. A text that stops after the
    subject and a space (or after "the cats that we saw w") has its slot at the end, so a
    half-typed sentence is still a test. None when there is no such sentence.
    """
    low = text.lower()
    subject = None
    for m in _WORD.finditer(low):
        start, end, word = m.start(), m.end(), m.group()
        if subject is not None and "." in low[subject[1]:start]:
            subject = None  # a new sentence: its own subject
        if subject is None:
            if word in _NUMBER:
                subject = (start, end, word)
            continue
        if word in VERB_FORMS:
            return AgreementSlot(text[subject[0]:subject[1]], subject[0], subject[1], _NUMBER[subject[2]],
                                 start, word)
    if subject is None or "." in low[subject[1]:]:
        return None
    tail = low[subject[1]:]
    if low.endswith(" "):
        return _open_slot(text, subject, len(text))
    last = _WORD.findall(tail)
    if tail.rstrip() != tail or not last:
        return None
    # the text stops inside a word that could be the verb's start ("w", "we"... but "we" is
    # also a pronoun: only a strict prefix of both forms, "w", counts)
    if last[-1] == "w" and len(last) > 1:
        return _open_slot(text, subject, len(text) - 1)
    return None


def _open_slot(text: str, subject: tuple[int, int, str], verb_start: int) -> AgreementSlot:
    return AgreementSlot(text[subject[0]:subject[1]], subject[0], subject[1], _NUMBER[subject[2]], verb_start, None)


def flip_subject(text: str) -> str | None:
    """The text with its agreement sentence's subject in the other number, and the verb too
    when it is written ("the cat ... was" <-> "the cats ... were"). None without a slot."""
    slot = find_agreement(text)
    if slot is None:
        return None
    word = _FLIP[slot.subject.lower()]
    if slot.subject[:1].isupper():
        word = word.capitalize()
    out = text[:slot.subject_start] + word
    rest = text[slot.subject_end:]
    if slot.verb_written is not None:
        v0 = slot.verb_start - slot.subject_end
        verb = VERB_FORMS[1 - VERB_FORMS.index(slot.verb_written)]
        written = rest[v0:v0 + len(slot.verb_written)]
        if written[:1].isupper():
            verb = verb.capitalize()
        rest = rest[:v0] + verb + rest[v0 + len(slot.verb_written):]
    return out + rest


# Two histories that differ in subject, number and clause but end alike: the stepper shows how
# close the states they leave behind are (the hidden state is a lossy summary, not a recording).
_PARTNERS = (("the man that she chased", "the men that she chased"),
             ("the dog that they met", "the dogs that they met"))


def alias_partner(text: str) -> str | None:
    """A different history that ends like `text`: another subject, clause and number-matched
    words before the same verb and ending. None without an agreement slot with its verb."""
    slot = find_agreement(text)
    if slot is None or slot.verb_written is None:
        return None
    sentence_start = text.rfind(".", 0, slot.subject_start) + 1
    head = text[:sentence_start] + (" " if sentence_start else "")
    for pair in _PARTNERS:
        partner = pair[int(slot.plural)]
        if slot.subject.lower() not in partner.split():
            return head + partner + " " + text[slot.verb_start:]
    return None
