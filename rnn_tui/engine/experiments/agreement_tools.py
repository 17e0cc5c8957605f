"""The agreement toolkit: minimal pairs, the corpora agreement runs train on, and the measure
of how often a model picks the right verb form ("was"/"were") after a distractor clause.

Shared by the agreement and tbptt experiments and the Compare screen.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..corpus import (TOY_ALPHABET, AgreementItem, Corpus, Vocab, agreement_categories, agreement_items,
                      load_corpus)
from ..corpus.bundled import _AGR_NOUNS, _AGR_PLACES, _AGR_PRONOUNS
from ..errors import ConfigError
from ..model import LoadedModel

# Distractor lengths (words between "that" and the verb) the agreement measurements test.
DEFAULT_DISTRACTORS = (0, 2, 4, 6, 8, 10, 12, 15, 18, 21, 24, 27, 30)


# Singular/plural pairs of the bundled generator's own nouns (so the two never drift apart):
# used to build minimal pairs.
def _noun_pairs() -> dict[str, str]:
    flip = {}
    for sg, pl in _AGR_NOUNS:
        flip[sg], flip[pl] = pl, sg
    return flip


def _with_words(item: AgreementItem, flip: dict[str, str], first: int = 0, last: int | None = None) -> AgreementItem:
    """The item with prefix words[first:last] swapped through `flip` and the other verb form:
    the shared body of flip_number and flip_subject."""
    words = item.prefix.split(" ")
    stop = len(words) if last is None else last
    words = [flip.get(w, w) if first <= i < stop else w for i, w in enumerate(words)]
    prefix = " ".join(words)
    rest = item.text[len(item.prefix) + len(item.correct):]
    return AgreementItem(prefix + item.wrong + rest, prefix, item.wrong, item.correct,
                         item.distractor_words, not item.plural)


def flip_number(item: AgreementItem) -> AgreementItem:
    """The same sentence with every noun and pronoun in the other number (the verb to match).

    Unlike flip_subject, the clause keeps its relation to the subject: an all-attractor item
    stays one, so the pair differs in number only ("the man that they saw" / "the men that he
    saw").
    """
    flip = _noun_pairs()
    for sg, pl in _AGR_PLACES:
        flip[sg], flip[pl] = pl, sg
    for sg, pl in zip(*_AGR_PRONOUNS):  # he <-> we, she <-> they
        flip[sg], flip[pl] = pl, sg
    return _with_words(item, flip)


def flip_subject(item: AgreementItem) -> AgreementItem:
    """The same sentence with the subject in the other number (and the verb to match).

    The distractor clause is untouched, so an "opposite" item (every clause noun has the other
    number) becomes a congruent one (every clause noun has the subject's number).
    """
    return _with_words(item, _noun_pairs(), 1, 2)  # word 1 is the subject ("the cat ...")


def balanced_agreement_corpus(level: str = "char", size: int = 8000, seed: int = 0,
                              max_distractor: int = 12) -> Corpus:
    """Agreement sentences whose clause nouns carry no information about the verb.

    Each sentence is an all-attractor item (every clause noun has the other number from the
    subject) or its subject-flipped twin (every clause noun agrees), with equal odds: the
    clause says nothing about the verb, only the subject (0-12 words back) does, and half the
    training sentences are the hard case the test items are. The bundled `agreement` corpus
    is unbiased too (each clause noun's number is a coin flip) but has few all-attractor
    sentences, so it teaches the hard case less directly.
    """
    rng = random.Random(seed)
    per = size // (max_distractor + 1) + 1
    items: list[AgreementItem] = []
    for d in range(max_distractor + 1):
        items += agreement_items(d, per, seed=seed * 1009 + d)
    rng.shuffle(items)
    items = [flip_subject(it) if rng.random() < 0.5 else it for it in items[:size]]
    text = " ".join(it.text for it in items)
    if level == "char":
        vocab = Vocab(tokens=tuple(sorted(set(TOY_ALPHABET) | set(text))), level="char")
    else:
        vocab = Vocab.build(text, level)
    ids = vocab.encode(text, on_unknown="unk").ids
    cut = len(ids) - max(1, int(round(len(ids) * 0.1)))
    return Corpus(name="agreement-balanced", vocab=vocab, train=ids[:cut], val=ids[cut:],
                  categories=agreement_categories(),
                  description=f"subject-verb agreement, {size} sentences, clause nouns independent of "
                              f"the verb, 0-{max_distractor} distractor words",
                  examples=tuple(it.text for it in items[:2]))


def agreement_corpus(kind: str, level: str, seed: int) -> Corpus:
    """The corpus an agreement run trains on: "balanced" (the default) or the "bundled" one."""
    if kind == "balanced":
        return balanced_agreement_corpus(level, seed=seed)
    return load_corpus("agreement", level, seed=seed)


@torch.no_grad()
def continuation_logprobs(lm: LoadedModel, prefixes: list[str], continuations: list[str],
                          batch: int = 256) -> np.ndarray:
    """log P(continuation | prefix) in nats, summed over the continuation's tokens: [N].

    Both are encoded with the model's vocabulary (unknown words map to <unk> where the
    vocabulary has one, else are skipped). Rows are right-padded: the model is causal, so
    padding after a row's end never changes what it computed before.
    """
    on_unknown = "unk" if lm.vocab.unk is not None else "skip"
    pairs = []
    for p, c in zip(prefixes, continuations):
        ip = lm.vocab.encode(p, on_unknown=on_unknown).ids
        ic = lm.vocab.encode(c, on_unknown=on_unknown).ids
        if len(ip) == 0 or len(ic) == 0:
            raise ConfigError(f"cannot score {c!r} after {p!r}: nothing left after encoding")
        pairs.append((ip, ic))
    model = lm.model
    was_training = model.training
    model.eval()
    out = np.empty(len(pairs))
    try:
        for s in range(0, len(pairs), batch):
            chunk = pairs[s:s + batch]
            width = max(len(a) + len(b) for a, b in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            for i, (a, b) in enumerate(chunk):
                ids[i, :len(a) + len(b)] = np.concatenate([a, b])
            logits, _ = model(torch.as_tensor(ids, device=model.device))
            lp = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
            for i, (a, b) in enumerate(chunk):
                pos = len(a) - 1 + np.arange(len(b))  # logits at t predict token t+1
                out[s + i] = lp[i, pos, b].sum()
    finally:
        model.train(was_training)
    return out


@dataclass(frozen=True, eq=False)
class AgreementCurve:
    """Agreement at each distractor length, over minimal pairs.

    Each pair is an all-attractor item (every clause noun has the other number: the
    "incongruent" half) and the same item with its subject flipped ("congruent"). The right
    verb's probability is P(right) / (P(right) + P(wrong)) with P(verb) the product of its
    per-token probabilities after ". " + prefix (char level: the characters of "was " /
    "were ", trailing space included so "was" cannot be the start of "waited"). A model that
    reads the verb off the clause scores 50% over the pairs; only one that remembers the
    subject scores 100%.
    """

    distractors: np.ndarray  # int64 [D]
    p_correct: np.ndarray  # float64 [D]: mean probability of the right form, both halves
    accuracy: np.ndarray  # float64 [D]: fraction of items where the right form is more likely
    accuracy_incongruent: np.ndarray  # [D]: the all-attractor half
    accuracy_congruent: np.ndarray  # [D]: the subject-flipped half
    items: int  # items per length (pairs x 2)


def agreement_curve(lm: LoadedModel, distractors, pairs: int = 20, seed: int = 1000,
                    stop: threading.Event | None = None) -> AgreementCurve:
    """Measure agreement at every distractor length (see AgreementCurve)."""
    ds = np.asarray(list(distractors), dtype=np.int64)
    cont_sep = " " if lm.vocab.level == "char" else ""
    p = np.full(len(ds), np.nan)
    acc, inc, con = p.copy(), p.copy(), p.copy()
    for j, d in enumerate(ds):
        if stop is not None and stop.is_set():
            break
        base = agreement_items(int(d), pairs, seed=seed + int(d))
        items = base + [flip_subject(it) for it in base]
        prefixes = [". " + it.prefix for it in items]
        right = continuation_logprobs(lm, prefixes, [it.correct + cont_sep for it in items])
        wrong = continuation_logprobs(lm, prefixes, [it.wrong + cont_sep for it in items])
        pc = 1.0 / (1.0 + np.exp(np.clip(wrong - right, -700, 700)))
        ok = pc > 0.5
        p[j], acc[j] = pc.mean(), ok.mean()
        inc[j], con[j] = ok[:pairs].mean(), ok[pairs:].mean()
    return AgreementCurve(distractors=ds, p_correct=p, accuracy=acc, accuracy_incongruent=inc,
                          accuracy_congruent=con, items=2 * pairs)


def longest_solved(distractors: np.ndarray, accuracy: np.ndarray, level: float = 0.9) -> int:
    """The largest distractor length d such that accuracy >= level at every tested length <= d
    (-1 if not even the shortest)."""
    best = -1
    for d, a in zip(distractors, accuracy):
        if not a >= level:
            break
        best = int(d)
    return best


def recurrent_parameters(cell: str, hidden: int, inputs: int) -> int:
    """Weights and biases of one recurrent layer: gates x (H x In + H x H + 2H)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    return gates * (hidden * inputs + hidden * hidden + 2 * hidden)
