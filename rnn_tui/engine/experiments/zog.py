"""Zog: a network trained on the toy grammar reads sentences where the unseen word "zog" fills
every human-noun slot; which category is zog nearest to, as read and in context?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..corpus import GRAMMAR_LEXICON, TOY_ALPHABET, grammar_categories, grammar_sentences, load_corpus, word_spans
from ..errors import ConfigError
from ..model import LoadedModel
from ..train import TrainConfig
from .base import ExperimentResult, RunContext, experiment, final_loss


@dataclass(frozen=True)
class ZogSettings:
    cell: str = "lstm"
    hidden: int = 64
    embed: int = 32
    steps: int = 500
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    model: str = ""  # a bundled model (rnn, lstm, gru) or run directory instead of training
    sentences: int = 600  # test sentences with the normal lexicon, for the category centroids
    zog_sentences: int = 300  # test sentences where "zog" stands in every human-noun slot
    novel_word: str = "zog"
    seed: int = 0
    device: str = "cpu"


def _word_states(lm: LoadedModel, text: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(word, state at its last character, state at the last character of the next word)."""
    ids = lm.vocab.encode(text, on_unknown="skip").ids
    if len(ids) != len(text):
        raise ConfigError("the zog experiment needs a character-level model over the toy alphabet")
    with torch.no_grad():
        x = torch.as_tensor(ids, device=lm.model.device)[None]
        out, _ = lm.model.rnn(lm.model.embed(x))
    H = out[0].cpu().numpy().astype(np.float64)
    spans = word_spans(text)
    return [(w, H[e - 1], H[spans[i + 1][1] - 1]) for i, (s, e, w) in enumerate(spans[:-1])]


def _pca2(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 2 x H projection) of the principal plane, sign fixed so runs compare."""
    mu = points.mean(0)
    _, _, vt = np.linalg.svd(points - mu, full_matrices=False)
    p = vt[:2]
    signs = np.sign(p[np.arange(len(p)), np.abs(p).argmax(1)])
    return mu, p * signs[:, None]


class ZogResult(ExperimentResult):
    """Two views of every word: "as read" = the hidden state at the word's last character;
    "in context" = the state at the last character of the next word (the word in its use).
    Category centroids average the word types of a category; distances are Euclidean in the
    full hidden space; the 2-D points are the PCA plane of the word-type means of each view."""

    novel_word: str
    words: tuple[str, ...]  # word types, each with its category
    categories: tuple[str, ...]  # category of each word
    category_names: tuple[str, ...]
    points_read: np.ndarray  # [W, 2]
    points_context: np.ndarray  # [W, 2]
    novel_read: np.ndarray  # [2]
    novel_context: np.ndarray  # [2]
    centroids_read: np.ndarray  # [C, 2]
    centroids_context: np.ndarray  # [C, 2]
    distance_read: np.ndarray  # [C]: novel word to each category centroid, full hidden space
    distance_context: np.ndarray  # [C]
    nearest_read: str
    nearest_context: str
    nearest_words_read: tuple[str, ...]  # the five closest word types, as read
    nearest_words_context: tuple[str, ...]
    source: str  # where the model came from

    def table(self) -> list[str]:
        rows = [f"{'category':<12} {'dist as read':>12} {'in context':>11}"]
        order = np.argsort(self.distance_context)
        for j in order:
            rows.append(f"{self.category_names[j]:<12} {self.distance_read[j]:>12.3f} {self.distance_context[j]:>11.3f}")
        return rows

    def findings(self) -> list[str]:
        z = self.novel_word
        return [f"in context, {z!r} is nearest to {self.nearest_context} "
                f"(closest words: {', '.join(self.nearest_words_context[:3])})",
                f"as read (its own letters only), {z!r} is nearest to {self.nearest_read} "
                f"(closest words: {', '.join(self.nearest_words_read[:3])})",
                f"model: {self.source}"]


@experiment("zog", ZogSettings, ZogResult,
            explanation=("Train on the toy grammar, then read sentences where the unseen word 'zog' fills "
                         "every human-noun slot.",
                         "Word states -> PCA; which category centroid is zog nearest to, as read and in context?"),
            quick=dict(steps=150, sentences=200, zog_sentences=100))
def run_zog(s: ZogSettings, ctx: RunContext) -> dict:
    word = s.novel_word.strip().lower()
    if not word.isalpha() or not set(word) <= set(TOY_ALPHABET):
        raise ConfigError(f"the novel word must be lowercase letters a-z, got {s.novel_word!r}")
    known = grammar_categories()
    if word in known:
        raise ConfigError(f"{word!r} is already a grammar word ({known[word]}): pick an unseen one")
    if s.model:
        from ..checkpoint import load_model

        lm = load_model(s.model, device="cpu")
        source = lm.meta.get("source") or s.model
    else:
        corpus = load_corpus("grammar", "char", seed=s.seed)
        cfg = TrainConfig(corpus="grammar", cell=s.cell, hidden=s.hidden, embed=s.embed, steps=s.steps,
                          seq_len=s.seq_len, batch=s.batch, lr=s.lr, eval_every=0, eval_batches=2,
                          seed=s.seed, device=s.device)
        tr = ctx.span(0, 0.85).train(cfg, corpus, "grammar")
        lm = tr.snapshot()
        source = f"{s.cell} H={s.hidden} trained {tr.step} steps on grammar (val loss {final_loss(tr):.3f})"
    if lm.vocab.level != "char":
        raise ConfigError("the zog experiment needs a character-level model")
    ctx.report(0.9, "zog: reading test sentences")
    # Test sentences only: the model never trains on the novel word.
    text = " ".join(grammar_sentences(s.sentences, seed=s.seed + 101))
    lexicon = dict(GRAMMAR_LEXICON)
    lexicon["NOUN_HUMAN"] = (word,)
    ztext = " ".join(grammar_sentences(s.zog_sentences, seed=s.seed + 202, lexicon=lexicon))
    read: dict[str, list] = {}
    used: dict[str, list] = {}
    for w, a, b in _word_states(lm, text):
        read.setdefault(w, []).append(a)
        used.setdefault(w, []).append(b)
    z_read = [a for w, a, _ in _word_states(lm, ztext) if w == word]
    z_used = [b for w, _, b in _word_states(lm, ztext) if w == word]
    words = tuple(w for w in sorted(read) if w in known)
    cats = tuple(known[w] for w in words)
    names = tuple(c for c in GRAMMAR_LEXICON if c in set(cats))
    out: dict[str, Any] = dict(novel_word=word, words=words, categories=cats, category_names=names, source=source)
    for view, table, zs in (("read", read, z_read), ("context", used, z_used)):
        means = np.stack([np.mean(table[w], 0) for w in words])
        zmean = np.mean(zs, 0)
        cent = np.stack([means[[i for i, c in enumerate(cats) if c == n]].mean(0) for n in names])
        dist = np.linalg.norm(cent - zmean, axis=1)
        wdist = np.linalg.norm(means - zmean, axis=1)
        mu, p = _pca2(means)
        out[f"points_{view}"] = (means - mu) @ p.T
        out[f"novel_{view}"] = (zmean - mu) @ p.T
        out[f"centroids_{view}"] = (cent - mu) @ p.T
        out[f"distance_{view}"] = dist
        out[f"nearest_{view}"] = names[int(np.argmin(dist))]
        out[f"nearest_words_{view}"] = tuple(words[i] for i in np.argsort(wdist)[:5])
    ctx.report(1.0, "zog: done")
    return out
