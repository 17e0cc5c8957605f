"""Elman (1990), "Finding structure in time": a simple recurrent network trained only to predict
the next word of the toy grammar, no labels anywhere, and the word categories appear in its
hidden state. Each noun and verb is the mean hidden state around it over a test text; the
words are clustered hierarchically (Ward linkage) into Elman's tree: nouns and verbs split at
the top, then animate and inanimate nouns, then humans and animals. The unseen word "zog",
read in every human-noun slot through an input the network never trained, is placed in the
same tree.

"around" (the default) is the mean of the state just before the word and the state just after
it: where the word stands and what it leads the network to expect. In this grammar every noun
follows "the" and every sentence-final word predicts ".", so the state after the word alone
("at") files the inanimate objects with the intransitive verbs (both end sentences).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..corpus import GRAMMAR_LEXICON, TOY_ALPHABET, grammar_categories, grammar_sentences, load_corpus
from ..errors import ConfigError
from ..model import CELLS
from ..train import TrainConfig
from .base import ExperimentResult, RunContext, choose, experiment, final_loss

VIEWS = ("around", "at")
# What each category is: its family, its kinds from general to specific, and its number.
TAGS = {
    "NOUN_HUMAN": ("noun", ("animate", "human"), "singular"),
    "NOUN_HUMAN_PL": ("noun", ("animate", "human"), "plural"),
    "NOUN_ANIMAL": ("noun", ("animate", "animal"), "singular"),
    "NOUN_ANIMAL_PL": ("noun", ("animate", "animal"), "plural"),
    "NOUN_FOOD": ("noun", ("inanimate", "food"), ""), "NOUN_OBJECT": ("noun", ("inanimate", "object"), ""),
    "VERB_PAST": ("verb", ("past",), ""), "VERB_INTRAN": ("verb", ("present", "intransitive"), ""),
    "VERB_TRAN": ("verb", ("present", "transitive"), ""), "VERB_READ": ("verb", ("present", "transitive"), ""),
    "VERB_EAT": ("verb", ("present", "transitive"), ""), "VERB_BREAK": ("verb", ("present", "transitive"), ""),
}
NOVEL = "NOVEL"


@dataclass(frozen=True)
class ElmanSettings:
    cell: str = "rnn"  # Elman's simple recurrent network
    hidden: int = 64
    embed: int = 32
    steps: int = 800
    seq_len: int = 32
    batch: int = 32
    lr: float = 3e-3
    sentences: int = 1500  # test sentences the states are averaged over
    zog_sentences: int = 600  # test sentences with the novel word in every human-noun slot
    novel_word: str = "zog"
    view: str = "around"
    seed: int = 0
    device: str = "cpu"


def ward_linkage(points: np.ndarray) -> np.ndarray:
    """Agglomerative clustering with Ward's criterion, as scipy's linkage: [N-1, 4] rows of
    (cluster a, cluster b, merge height, size); clusters N.. are the merges in order."""
    n = len(points)
    members = {i: [i] for i in range(n)}
    centroids = {i: points[i].astype(np.float64) for i in range(n)}
    out = np.zeros((max(0, n - 1), 4))
    nxt = n
    while len(members) > 1:
        keys = sorted(members)
        best = None
        for x, a in enumerate(keys):
            for b in keys[x + 1:]:
                na, nb = len(members[a]), len(members[b])
                d = np.sqrt(2.0 * na * nb / (na + nb)) * np.linalg.norm(centroids[a] - centroids[b])
                if best is None or d < best[0]:
                    best = (d, a, b)
        d, a, b = best
        na, nb = len(members[a]), len(members[b])
        members[nxt] = members.pop(a) + members.pop(b)
        centroids[nxt] = (centroids.pop(a) * na + centroids.pop(b) * nb) / (na + nb)
        out[nxt - n] = (a, b, d, na + nb)
        nxt += 1
    return out


def leaves_of(linkage: np.ndarray, node: int, n: int) -> list[int]:
    if node < n:
        return [node]
    a, b = int(linkage[node - n, 0]), int(linkage[node - n, 1])
    return leaves_of(linkage, a, n) + leaves_of(linkage, b, n)


def group_name(categories: list[str], share: float = 0.9) -> str:
    """The most specific description ~all of a cluster's words share: "singular human nouns",
    "inanimate nouns", "transitive verbs"; "mixed" when not even the family is shared."""
    known = [TAGS[c] for c in categories if c in TAGS]
    novel = len(categories) - len(known)

    def common(values):
        values = [v for v in values if v]
        if not values:
            return ""
        top = max(sorted(set(values)), key=values.count)
        return top if values.count(top) >= share * len(known) else ""

    name = "mixed"
    family = common([t[0] for t in known]) if known else ""
    if family:
        kind = ""
        for level in range(max(len(t[1]) for t in known)):
            shared = common([t[1][level] if len(t[1]) > level else "" for t in known])
            if not shared:
                break
            kind = shared
        number = common([t[2] for t in known])
        name = " ".join(w for w in (number, kind, family + "s") if w)
    return name + (" + novel" if novel else "")


class ElmanResult(ExperimentResult):
    words: tuple[str, ...]  # the leaves, the novel word included
    categories: tuple[str, ...]  # each leaf's category (NOVEL for the novel word)
    linkage: np.ndarray  # [N-1, 4]
    order: np.ndarray  # int [N]: the leaves top to bottom in the drawn tree
    splits: tuple  # ((depth, left name, right name, left words, right words), ...) top splits first
    novel_word: str
    novel_group: str  # the name of the smallest cluster that holds the novel word and other words
    novel_neighbours: tuple[str, ...]  # that cluster's other words
    view: str
    source: str

    def table(self) -> list[str]:
        rows = ["depth  split"]
        for depth, left, right, lw, rw in self.splits:
            rows.append(f"{depth:>5}  {left} ({len(lw)}) | {right} ({len(rw)})")
        return rows

    def findings(self) -> list[str]:
        out = []
        if self.splits:
            _, left, right, _, _ = self.splits[0]
            out.append(f"trained on prediction alone, the top split of the hidden states is {left} | {right}")
        shown = 0
        for depth, left, right, lw, rw in self.splits[1:]:
            if left != right and "mixed" not in (left, right) and min(len(lw), len(rw)) >= 2 and shown < 6:
                out.append(f"then (depth {depth}) {left} | {right}")
                shown += 1
        out.append(f"{self.novel_word!r}, never trained as an input, lands with the {self.novel_group} "
                   f"({', '.join(self.novel_neighbours[:4])})")
        out.append(f"model: {self.source}; each word: mean state {'around it' if self.view == 'around' else 'after it'}")
        return out


def _word_states(lm, text: str, view: str):
    """(word, vector) for every word: the state before and after it ("around") or after it ("at")."""
    enc = lm.vocab.encode(text, on_unknown="unk")
    ids = np.asarray(enc.ids, dtype=np.int64)
    with torch.no_grad():
        out, _ = lm.model.rnn(lm.model.embed(torch.as_tensor(ids, device=lm.model.device)[None]))
    H = out[0].double().cpu().numpy()
    words = text.replace(".", " .").split() if lm.vocab.level == "word" else None
    if words is None or len(words) != len(H):
        raise ConfigError("the elman experiment needs a word-level model of the grammar")
    for t in range(1, len(words)):
        vec = np.concatenate([H[t - 1], H[t]]) if view == "around" else H[t]
        yield words[t], vec


@experiment("elman", ElmanSettings, ElmanResult,
            explanation=("Elman 1990: a simple recurrent network trained only to predict the next word; no labels.",
                         "Mean hidden state per word, clustered: nouns | verbs, then animate | inanimate, human | animal."),
            quick=dict(steps=300, sentences=500, zog_sentences=200))
def run_elman(s: ElmanSettings, ctx: RunContext) -> dict:
    choose("cell", s.cell, CELLS)
    choose("view", s.view, VIEWS)
    word = s.novel_word.strip().lower()
    if not word.isalpha() or not set(word) <= set(TOY_ALPHABET):
        raise ConfigError(f"the novel word must be lowercase letters a-z, got {s.novel_word!r}")
    known = grammar_categories()
    if word in known:
        raise ConfigError(f"{word!r} is already a grammar word ({known[word]}): pick an unseen one")
    corpus = load_corpus("grammar", "word", seed=s.seed)
    cfg = TrainConfig(corpus="grammar", level="word", cell=s.cell, hidden=s.hidden, embed=s.embed, steps=s.steps,
                      seq_len=s.seq_len, batch=s.batch, lr=s.lr, eval_every=0, eval_batches=2, seed=s.seed,
                      device=s.device)
    tr = ctx.span(0, 0.8).train(cfg, corpus, "grammar, word level")
    lm = tr.snapshot()
    source = f"{s.cell} H={s.hidden} trained {tr.step} steps to predict the next word (val loss {final_loss(tr):.3f})"
    ctx.report(0.85, "elman: reading test sentences")
    sums: dict[str, list] = {}
    for w, vec in _word_states(lm, " ".join(grammar_sentences(s.sentences, seed=s.seed + 101)), s.view):
        if known.get(w) in TAGS:
            sums.setdefault(w, []).append(vec)
    lexicon = dict(GRAMMAR_LEXICON)
    lexicon["NOUN_HUMAN"] = (word,)  # its input is <unk>: a row of the embedding no gradient ever touched
    for w, vec in _word_states(lm, " ".join(grammar_sentences(s.zog_sentences, seed=s.seed + 202, lexicon=lexicon)),
                               s.view):
        if w == word:
            sums.setdefault(w, []).append(vec)
    words = tuple(sorted(w for w in sums if w != word)) + ((word,) if word in sums else ())
    cats = tuple(known.get(w, NOVEL) for w in words)
    points = np.stack([np.mean(sums[w], 0) for w in words])
    ctx.report(0.95, "elman: clustering")
    link = ward_linkage(points)
    n = len(words)
    root = 2 * n - 2
    order = np.asarray(leaves_of(link, root, n), dtype=np.int64)
    splits = []
    frontier = [(root, 1)]
    while frontier:
        node, depth = frontier.pop(0)
        if node < n or depth > 4:
            continue
        a, b = int(link[node - n, 0]), int(link[node - n, 1])
        la, lb = leaves_of(link, a, n), leaves_of(link, b, n)
        splits.append((depth, group_name([cats[i] for i in la]), group_name([cats[i] for i in lb]),
                       tuple(words[i] for i in la), tuple(words[i] for i in lb)))
        frontier += [(a, depth + 1), (b, depth + 1)]
    # the smallest cluster with the novel word and at least one other word
    z = n - 1 if words and words[-1] == word else None
    group, neighbours = "", ()
    if z is not None:
        for k in range(len(link)):
            members = leaves_of(link, n + k, n)
            if z in members and len(members) > 1:
                others = [i for i in members if i != z]
                group = group_name([cats[i] for i in others])
                neighbours = tuple(words[i] for i in others)
                break
    ctx.report(1.0, "elman: done")
    return dict(words=words, categories=cats, linkage=link, order=order, splits=tuple(splits), novel_word=word,
                novel_group=group, novel_neighbours=neighbours, view=s.view, source=source)
