"""`verb_agreement`: for a model and a sentence, where the subject and the verb slot are, and
how likely the model finds "was" against "were" there.

The default sentence, "the cat that we saw yesterday was happy", is an agreement test: the
verb must agree with a subject four words back, across a clause whose own pronoun ("we") has
the other number. `verb_agreement` finds the slot (`agreement_text.find_agreement`), scores
both verb forms after the words before it, and says which position decides the form: at the
character level the letter after the "w" (the "a" of was, the "e" of were), at the word level
the verb itself. The stepper, `rnn-tui trace` and the Gradients screen's default loss use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..agreement_text import AgreementSlot, find_agreement
from .base import MAX_TRACE_TOKENS, ProbeResult, encode_text, unknown_of, zero_state


@dataclass(frozen=True)
class TokenSlot:
    """An agreement slot in token positions of an encoded text."""

    slot: AgreementSlot
    subject: int  # the position just after the subject noun (char: the space after it; word: the noun)
    verb: int  # the verb's first token (char: its "w"); len(tokens) when the text stops before it
    decision: int  # the position whose next-token prediction decides the form
    has_target: bool  # the decided token is in the text (a loss can be taken there)


def token_slot(tokens: tuple[str, ...], level: str) -> TokenSlot | None:
    """The agreement slot of a token sequence (None when it has none)."""
    if level == "word":
        text = " ".join(tokens)
        starts, x = [], 0
        for tok in tokens:
            starts.append(x)
            x += len(tok) + 1
    elif level == "bpe":  # pieces as the tokenizer writes them: "▁" is the space before a word
        text = "".join(tokens).replace("▁", " ")
        ends = np.cumsum([len(t) for t in tokens])
    else:
        text = "".join(tokens)
    slot = find_agreement(text)
    if slot is None:
        return None
    T = len(tokens)
    if level == "bpe":
        def piece_at(i):  # the piece holding character i (T past the end)
            return int(np.searchsorted(ends, i, side="right")) if i < len(text) else T

        subject = min(piece_at(slot.subject_end - 1), T - 1)
        # The verb's piece starts with its "▁" (the space before it), when the text has one.
        at = slot.verb_start - 1 if slot.verb_start > 0 and text[slot.verb_start - 1] == " " else slot.verb_start
        verb = piece_at(at)
        return TokenSlot(slot, subject, verb, verb - 1, verb < T)
    if level == "word":
        subject = starts.index(slot.subject_start)
        verb = starts.index(slot.verb_start) if slot.verb_start < len(text) else T
        decision = verb - 1
        has_target = verb < T
    else:
        subject = min(slot.subject_end, T - 1)
        verb = slot.verb_start
        decision = verb  # the "w": its prediction is the letter that tells was from were
        has_target = verb + 1 < T
    return TokenSlot(slot, subject, verb, decision, has_target)


@dataclass(frozen=True, eq=False)
class VerbAgreement(ProbeResult):
    """P(was) and P(were) at a sentence's verb slot, for one model.

    P(form) is the probability of the form's tokens (char level: with the space after it, so
    "was" cannot be the start of "waste") after every token before the slot, read from a zero
    state as the stepper reads it. `p_correct` is the right form's share of the two.
    """

    tokens: tuple[str, ...]  # the text as the model reads it
    subject: str
    plural: bool
    correct: str  # the form that agrees with the subject
    wrong: str
    verb_written: str | None  # the form the text has at the slot (None: the text stops there)
    subject_position: int  # token just after the subject noun
    verb_position: int  # the verb's first token
    decision_position: int  # the position whose prediction decides the form
    distance: int  # decision_position - subject_position: steps the number must be carried
    p_was: float
    p_were: float
    p_correct: float  # P(correct) / (P(was) + P(were))
    log_odds: float  # ln P(correct) - ln P(wrong), nats
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None

    @property
    def number(self) -> str:
        return "plural" if self.plural else "singular"

    @property
    def right(self) -> bool:
        return self.p_correct > 0.5

    def describe(self) -> str:
        verdict = "right" if self.right else "wrong"
        return (f"subject {self.subject!r} ({self.number}), {self.distance} steps before the verb: "
                f"P(was) {self.p_was:.3f}, P(were) {self.p_were:.3f}; {self.correct!r} gets "
                f"{self.p_correct:.1%} of the two ({verdict})")

    def to_json(self) -> dict:
        data = super().to_json()
        data["number"] = self.number
        data["description"] = self.describe()
        return data


def verb_agreement(lm, text: str, on_unknown: str = "skip", window: int | None = None) -> VerbAgreement | None:
    """P(was) vs P(were) at the text's verb slot (see VerbAgreement); None without a slot.
    ``window``: read only the text's last tokens, as the other probes do."""
    ids, tokens, enc, _ = encode_text(lm, text, on_unknown, window, MAX_TRACE_TOKENS, "verb agreement")
    level = lm.vocab.level
    ts = token_slot(tokens, level)
    if ts is None:
        return None
    model = lm.model
    sep = " " if level == "char" else ""
    forms = {}
    for form in ("was", "were"):
        # BPE: "was" alone reads as "▁was", the word after a space, as the slot has it.
        cont = lm.vocab.encode(form + sep, on_unknown="unk" if lm.vocab.unk is not None else "skip").ids
        forms[form] = np.asarray(cont, dtype=np.int64)
    prefix = ids[:ts.verb]
    lp = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for form, cont in forms.items():
                seq = np.concatenate([prefix, cont])
                logits, _ = model(torch.as_tensor(seq, device=model.device)[None], zero_state(model))
                logp = torch.log_softmax(logits[0].double(), dim=-1).cpu().numpy()
                pos = len(prefix) - 1 + np.arange(len(cont))
                lp[form] = float(logp[pos, cont].sum()) if len(prefix) else float("nan")
    finally:
        model.train(was_training)
    slot = ts.slot
    right, wrong = lp[slot.correct], lp[slot.wrong]
    share = 1.0 / (1.0 + math.exp(max(-700.0, min(700.0, wrong - right))))
    unknown, message = unknown_of(enc)
    return VerbAgreement(
        tokens=tokens, subject=slot.subject, plural=slot.plural, correct=slot.correct, wrong=slot.wrong,
        verb_written=slot.verb_written, subject_position=ts.subject, verb_position=ts.verb,
        decision_position=ts.decision, distance=ts.decision - ts.subject,
        p_was=math.exp(lp["was"]), p_were=math.exp(lp["were"]), p_correct=share, log_odds=right - wrong,
        unknown=unknown, unknown_message=message,
    )


def loss_mode_for(lm, text: str, preferred: str = "verb") -> str:
    """The gradient profile's loss for this text: `preferred`, except that "verb" (or "auto")
    falls back to "last" when the text has no subject with its was/were written out."""
    if preferred not in ("verb", "auto"):
        return preferred
    tokens = tuple(lm.vocab.encode(text, on_unknown="skip").tokens) if isinstance(text, str) else ()
    slot = token_slot(tokens, lm.vocab.level) if tokens else None
    return "verb" if slot is not None and slot.has_target else "last"
