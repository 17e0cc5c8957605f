"""Temperature: one prime sampled at several temperatures, and what each text is like (words in
the lexicon, distinct words, repeats, grammatical sentences of the toy grammar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..corpus import GRAMMAR_LEXICON, GRAMMAR_TEMPLATES
from .base import ExperimentResult, RunContext, experiment, fmt


@dataclass(frozen=True)
class TemperatureSettings:
    model: str = "lstm"  # a bundled model (rnn, lstm, gru) or a run directory
    prime: str = "the "
    temperatures: tuple = (0.2, 0.8, 1.5)
    length: int = 300
    seed: int = 0


def _template_patterns() -> list[list[set[str]]]:
    """Each grammar template as a list of allowed words per position."""
    pats = []
    for _, template in GRAMMAR_TEMPLATES:
        slots = []
        for slot in template.split():
            if slot.isupper():
                slots.append({w for c in slot.split("|") for w in GRAMMAR_LEXICON[c]})
            else:
                slots.append(set(slot.split("|")))
        pats.append(slots)
    return pats


def grammatical(sentence_words: list[str], patterns=None) -> bool:
    """Whether a word sequence is exactly one of the toy grammar's templates."""
    patterns = _template_patterns() if patterns is None else patterns
    return any(len(p) == len(sentence_words) and all(w in slot for w, slot in zip(sentence_words, p))
               for p in patterns)


def text_statistics(text: str, lexicon: set[str] | None, grammar: bool) -> dict[str, float]:
    """Word counts and quality measures of a generated text (NaN where they do not apply)."""
    import re

    words = re.findall(r"[a-z]+", text.lower())
    n = len(words)
    nan = float("nan")
    stats = {"words": float(n),
             "in_lexicon": (sum(w in lexicon for w in words) / n if n else nan) if lexicon else nan,
             "distinct": len(set(words)) / n if n else nan,
             "repeats": (sum(a == b for a, b in zip(words, words[1:])) / (n - 1)) if n > 1 else nan}
    if grammar:
        # Complete sentences only: the text between two full stops.
        parts = text.split(".")
        complete = [re.findall(r"[a-z]+", p.lower()) for p in parts[1:-1]]
        complete = [c for c in complete if c]
        pats = _template_patterns()
        stats["sentences"] = float(len(complete))
        stats["grammatical"] = (sum(grammatical(c, pats) for c in complete) / len(complete)) if complete else nan
    else:
        stats["sentences"] = nan
        stats["grammatical"] = nan
    return stats


STAT_NAMES = ("words", "in_lexicon", "distinct", "repeats", "sentences", "grammatical")


class TemperatureResult(ExperimentResult):
    prime: str
    temperatures: np.ndarray  # [K]
    texts: tuple[str, ...]  # [K] generated continuations
    stats: dict[str, np.ndarray]  # name -> [K]; see STAT_NAMES
    model_label: str

    def table(self) -> list[str]:
        rows = [f"{'T':>4} {'in lexicon':>10} {'distinct':>8} {'repeats':>7} {'grammatical':>11}  sample"]
        for k, t in enumerate(self.temperatures):
            st = {n: self.stats[n][k] for n in STAT_NAMES}
            sample = (self.prime + self.texts[k]).replace("\n", " ")[:60]
            rows.append(f"{t:>4.1f} {fmt(st['in_lexicon'], 2):>10} {fmt(st['distinct'], 2):>8} "
                        f"{fmt(st['repeats'], 2):>7} {fmt(st['grammatical'], 2):>11}  {sample}")
        return rows

    def findings(self) -> list[str]:
        out = [f"model: {self.model_label}"]
        labels = {"distinct": "distinct-word ratio", "in_lexicon": "words in the lexicon",
                  "grammatical": "grammatical sentences"}
        for key, label in labels.items():
            v = self.stats[key]
            if np.isfinite(v).any():
                out.append(f"{label}: " + ", ".join(f"{fmt(x, 2)} at T={t:g}" for t, x in zip(self.temperatures, v)))
        return out


@experiment("temperature", TemperatureSettings, TemperatureResult,
            explanation=("The same prime sampled at T = 0.2, 0.8 and 1.5, side by side.",
                         "Per temperature: words in the lexicon, distinct words, repeats, grammatical sentences."),
            quick=dict(length=120))
def run_temperature(s: TemperatureSettings, ctx: RunContext) -> dict:
    from ..checkpoint import load_model
    from ..sampling import sample

    lm = load_model(s.model, device="cpu")
    cats = lm.categories
    lexicon = set(cats) if cats else None
    grammar = lm.meta.get("corpus") == "grammar"
    texts, stats = [], {n: np.full(len(s.temperatures), np.nan) for n in STAT_NAMES}
    for k, t in enumerate(s.temperatures):
        if ctx.stopped:
            texts.append("")
            continue
        ctx.report(k / len(s.temperatures), f"sampling at T={t}")
        res = sample(lm, s.prime, temperature=float(t), length=s.length, seed=s.seed, stop=ctx.stop)
        texts.append(res.text)
        for n, v in text_statistics(s.prime + res.text, lexicon, grammar).items():
            stats[n][k] = v
    return dict(prime=s.prime, temperatures=np.asarray(s.temperatures, dtype=np.float64), texts=tuple(texts),
                stats=stats, model_label=lm.label)
