"""What the stepper draws, as pure functions of the data: the token strip with word
categories, dense gate rows, the memory row, the probability bars and the agreement line."""

from __future__ import annotations

import math

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

from ...render.bars import ProbBars
from ...render.colors import _color, rgb
from ...render.heatmap import token_label

MEMORY_FLOOR = 1e-4  # the memory row's colour scale: 1e-4 (forgotten) .. 1 (now)
CURRENT = Style(color="#000000", bgcolor="#ffd75f", bold=True)
DIM = Style(color="#8a8a8a")

_CAT_ABBREV = {"noun": "n", "verb": "v", "function": "fn", "adverb": "adv", "adj": "adj",
               "adjective": "adj", "determiner": "det", "pronoun": "pron", "preposition": "prep"}
_CAT_COLOURS = {"noun": "#5fd787", "verb": "#ffaf5f", "adj": "#d787d7", "adjective": "#d787d7",
                "adverb": "#5fd7ff", "function": "#8a8a8a"}
CURRENT = Style(color="#000000", bgcolor="#ffd75f", bold=True)
DIM = Style(color="#8a8a8a")


def abbreviate_category(cat: str) -> str:
    """NOUN_ANIMAL -> n.animal, ADVERB -> adv, FUNCTION -> fn."""
    parts = str(cat).lower().split("_")
    head = _CAT_ABBREV.get(parts[0], parts[0])
    return ".".join([head, *parts[1:]])


_CAT_WORDS = {"n": "noun", "v": "verb", "fn": "function word", "adv": "adverb", "adj": "adjective",
              "intran": "intransitive", "tran": "transitive"}


def category_words(cat: str) -> str:
    """NOUN_ANIMAL -> 'noun (animal)', FUNCTION -> 'function word': what a tag under a word means."""
    head, *rest = abbreviate_category(cat).split(".")
    words = _CAT_WORDS.get(head, head)
    return f"{words} ({', '.join(_CAT_WORDS.get(r, r) for r in rest)})" if rest else words


def category_colour(cat: str) -> str:
    return _CAT_COLOURS.get(str(cat).lower().split("_")[0], "#afafaf")


# ------------------------------------------------------------------ pure helpers
class _Bars(ProbBars):
    """ProbBars with a short "◀" marker: the loss is already on the line above the bars,
    so the bars keep the width."""

    def _tail(self, in_top: bool) -> str:
        return "" if self.marked_token is None else " ◀"

def cell_width_for(avail: int, n_tokens: int, level: str) -> int:
    """Columns per time step: as wide as fits, 1..2 for characters; 3..6 for words and subword
    pieces, whose labels two cells would cut to nothing (the columns shown then follow the step)."""
    fit = avail // max(1, n_tokens)
    if level == "char":
        return max(1, min(2, fit))
    return max(1, min(max(3, fit), 6, avail))


def dense_heat_row(values, label: str, width: int, scale: str, vmin: float, vmax: float,
                   label_width: int) -> Text:
    """Two units per cell ("▌": left half the foreground colour, right half the background),
    folded onto more lines when they do not fit; units are never averaged away."""
    v = np.asarray(values, dtype=float).ravel()
    colours = rgb(v, scale, vmin, vmax)
    head = set_cell_size(label, label_width) + " "
    per_line = max(1, width - len(head)) * 2
    if len(v) > per_line:  # folded: lines of equal length (48 + 48, not 90 + 6)
        lines = -(-len(v) // per_line)
        per_line = min(per_line, 2 * -(-len(v) // (2 * lines)))
    text = Text(no_wrap=True, overflow="crop")
    for start in range(0, max(1, len(v)), per_line):
        text.append(("\n" + " " * len(head)) if start else head, style="bold" if not start else "")
        chunk = colours[start:start + per_line]
        for j in range(0, len(chunk), 2):
            left = _color(chunk[j])
            right = _color(chunk[j + 1]) if j + 1 < len(chunk) else None
            text.append("▌", style=Style(color=left, bgcolor=right))
    return text


def memory_row(memory, step: int, c0: int, n_cols: int, cw: int, lw: int) -> Text:
    """||∂h_t/∂h_k|| / ||∂h_t/∂h_t|| for k <= t, aligned with the heatmap's columns."""
    logs = np.asarray(memory.log10_norms[step], dtype=float) - math.log10(math.sqrt(memory.dim))
    rel = np.where(np.isfinite(logs), 10.0 ** np.clip(logs, -30, 30), 0.0)
    colours = rgb(rel, "log", MEMORY_FLOOR, 1.0)
    label = "mem" if lw >= 3 else "m"
    text = Text(no_wrap=True, overflow="crop")
    text.append(label.rjust(lw) + " ", style=DIM)
    missing = memory.probes is not None and memory.probes[step] < 0  # a row the estimate skipped
    for c in range(c0, c0 + n_cols):
        if c > step or missing:
            text.append(" " * cw)
        else:
            text.append(" " * cw, style=Style(bgcolor=_color(colours[c])))
    return text


def token_strip(tokens, step: int, width: int, level: str, categories: dict | None) -> Text:
    """The sentence with the current token lit; a second line of word categories."""
    from ...engine.corpus import word_spans  # no torch needed at draw time: already loaded

    sep = " " if level == "word" else ""
    shown = []
    for i, tok in enumerate(tokens):
        if level != "word" and tok == " " and i != step:
            shown.append(" ")
        else:
            shown.append(token_label(tok))
    starts, x = [], 0
    for i, s in enumerate(shown):
        starts.append(x)
        x += cell_len(s) + (len(sep) if i < len(shown) - 1 else 0)
    total = x
    # Window so the current token is visible when the sentence is wider than the panel.
    x0 = 0
    if total > width:
        centre = starts[step] + cell_len(shown[step]) // 2
        x0 = max(0, min(centre - width // 2, total - width))
    line = Text(no_wrap=True, overflow="crop")
    for i, s in enumerate(shown):
        if i:
            line.append(sep)
        line.append(s, style=CURRENT if i == step else (Style() if i < step else DIM))
    line = line[x0 : x0 + width] if total > width else line
    if not categories:
        return line
    cats = Text(no_wrap=True, overflow="crop")
    canvas = [(" ", Style())] * total
    if level == "word":
        spans = [(starts[i], starts[i] + cell_len(s), tokens[i], i) for i, s in enumerate(shown)]
    else:
        text = "".join(tokens)
        spans = []
        for a, b, word in word_spans(text):
            spans.append((a, b, word, a))
    current = None  # (word, category) of the word the current token is in
    for a, b, word, first in spans:
        cat = categories.get(word) or categories.get(word.lower())
        if cat is None:
            continue
        inside = a <= starts[step] < b + 1 if level != "word" else first == step
        if inside:
            current = (word, cat)
        label = abbreviate_category(cat)
        room = b - a + (1 if b < total else 0)
        label = label[: max(1, room - 1)] if len(label) >= room else label
        style = Style(color=category_colour(cat), bold=inside, underline=inside)
        for j, ch in enumerate(label):
            if a + j < total:
                canvas[a + j] = (ch, style)
    for ch, style in canvas:
        cats.append(ch, style)
    cats = cats[x0 : x0 + width] if total > width else cats
    if current is not None:  # what the lit tag means, where the line has room for it
        note = f"   {current[0]}: {category_words(current[1])}"
        if cats.cell_len + cell_len(note) <= width:
            cats.append(note, style=Style(color=category_colour(current[1])))
    out = Text(no_wrap=True, overflow="crop")
    out.append_text(line)
    out.append("\n")
    out.append_text(cats)
    return out


# ------------------------------------------------------------------ agreement
RIGHT = Style(color="#5fd787", bold=True)
WRONG = Style(color="#ff5f5f", bold=True)


def agreement_view(rows, width: int) -> Text:
    """Two lines: the subject's number and what the verb must be; then P(was)/P(were) at the
    verb for each model ("this lstm", then the bundled cells), right ✓ or wrong ✗."""
    text = Text(overflow="fold")
    text.append("agreement ", style="bold")
    if rows is None:
        text.append("computing P(was) and P(were) at the verb…", style=DIM)
        return text
    current = rows[0][2] if rows else None
    if current is None:
        why = rows[0][3] if rows and rows[0][3] else ""
        text.append(why or "no subject noun with a was/were after it here: the test (and p, which flips "
                    "the number) needs one, as in the default sentence", style=DIM)
        return text
    a = current
    text.append(f"“{a.subject}” is {a.number} → ")
    text.append(a.correct, style="bold")
    text.append(f", decided {a.distance} steps later (v)", style=DIM)
    text.append(" · p flips it", style=DIM)
    text.append("\n")
    full = _agreement_cells(rows, a, compact=False)
    text.append_text(full if full.cell_len <= width else _agreement_cells(rows, a, compact=True))
    return text


def _agreement_cells(rows, a, compact: bool) -> Text:
    """P(was) against P(were) as shares of the two (they sum to 1), per model; compact: the
    right form's share alone."""
    text = Text()
    text.append(f"P({a.correct}) of the two " if compact else "P(was):P(were) ", style=DIM)
    for i, (key, label, va, error) in enumerate(rows):
        if i:
            text.append("  ")
        if i and rows[i - 1][0] == "current":  # the bundled models, beside the one on screen
            text.append("bundled ", style=DIM)
        text.append(f"{label} ")
        if va is None:
            text.append("n/a", style=DIM)
            continue
        was = va.p_was / (va.p_was + va.p_were) if va.p_was + va.p_were > 0 else float("nan")
        text.append(f"{va.p_correct:.2f}" if compact else f"{was:.2f}:{1 - was:.2f}")
        text.append(" ✓" if va.right else " ✗", style=RIGHT if va.right else WRONG)
    return text


def memory_reach(jm, floor: float = 1e-2) -> tuple[int, float]:
    """From the last token of a Jacobian map: how many tokens back the state still depends on
    an earlier one at >= `floor` of its dependence on itself, and that dependence at the first."""
    last = np.asarray(jm.log10_norms[-1], dtype=float) - math.log10(math.sqrt(jm.dim))
    rel = np.where(np.isfinite(last), 10.0 ** np.clip(last, -300, 300), 0.0)
    T = len(rel)
    far = [T - 1 - k for k in range(T) if rel[k] >= floor]
    return (max(far) if far else 0), float(rel[0])
