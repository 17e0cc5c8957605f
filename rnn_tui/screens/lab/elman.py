"""The elman experiment's view: Elman's (1990) figure, the hierarchical clustering of the word
states drawn as a dendrogram in the terminal (leaves as rows, merge height to the right), each
word coloured by its category, the novel word in white; the top splits named above it."""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text

from .plotting import PALETTE, hex_colour
from .views import LabViews

views = LabViews("elman")
NOVEL_COLOUR = "#ffffff"
CATEGORY_ORDER = ("NOUN_HUMAN", "NOUN_HUMAN_PL", "NOUN_ANIMAL", "NOUN_ANIMAL_PL", "NOUN_FOOD", "NOUN_OBJECT",
                  "VERB_INTRAN", "VERB_TRAN", "VERB_READ", "VERB_EAT", "VERB_BREAK", "VERB_PAST")


def category_colour(cat: str) -> str:
    if cat not in CATEGORY_ORDER:
        return NOVEL_COLOUR
    return hex_colour(PALETTE[CATEGORY_ORDER.index(cat) % len(PALETTE)])


def dendrogram_rows(linkage: np.ndarray, order, n: int, width: int) -> list[str]:
    """One string per leaf (in `order`), the tree drawn with box characters, root on the right."""
    width = max(8, width)
    link = np.asarray(linkage, dtype=float)
    hmax = float(link[:, 2].max()) if len(link) else 1.0
    row = {int(leaf): i for i, leaf in enumerate(order)}
    col = {leaf: 0 for leaf in range(n)}
    canvas = [[" "] * width for _ in range(n)]
    for k, (a, b, h, _) in enumerate(link):
        a, b, node = int(a), int(b), n + k
        c = max(int(round(h / hmax * (width - 1))) if hmax > 0 else 0, col[a] + 1, col[b] + 1)
        c = min(c, width - 1)
        col[node] = c
        for child in (a, b):
            for x in range(col[child] + (1 if child >= n else 0), c):
                canvas[row[child]][x] = "─"
        top, bot = sorted((row[a], row[b]))
        for y in range(top + 1, bot):
            canvas[y][c] = "│" if canvas[y][c] == " " else "┤"
        me = (top + bot) // 2
        root = k == len(link) - 1  # nothing leaves the root to the right
        canvas[top][c] = "┬" if me == top and not root else "┐"
        canvas[bot][c] = "┴" if me == bot and not root else "┘"
        if top < me < bot:
            canvas[me][c] = "┤" if root else ("├" if canvas[me][c] in (" ", "│") else "┼")
        row[node] = me
    return ["".join(line).rstrip() for line in canvas]


@views.text("dendrogram")
def dendrogram(r, width: int) -> RenderableType:
    words, cats = list(r.words), list(r.categories)
    n = len(words)
    if n < 2:
        return Text("not enough words to cluster", style="dim")
    label_w = max(len(w) for w in words) + 1
    rows = dendrogram_rows(r.linkage, r.order, n, width - label_w - 2)
    lines: list = []
    head = Text()
    head.append("Elman's tree ", style="bold")
    head.append("(each word: the mean hidden state around it; Ward linkage; further right = merged later)",
                style="dim")
    lines.append(head)
    if r.splits:
        _, left, right, _, _ = r.splits[0]
        lines.append(Text(f"top split: {left} | {right}", style="dim"))
    for i, leaf in enumerate(np.asarray(r.order, dtype=int)):
        cat = cats[leaf]
        t = Text(no_wrap=True, overflow="crop")
        style = Style(color=category_colour(cat), bold=cat not in CATEGORY_ORDER)
        t.append(words[leaf].rjust(label_w - 1) + " ", style=style)
        t.append(rows[i], style="dim")
        lines.append(t)
    key = Text()
    for cat in CATEGORY_ORDER:
        if cat in cats:
            key.append("■ ", style=category_colour(cat))
            key.append(cat.lower().replace("_", " ") + "  ", style="dim")
    key.append("■ ", style=NOVEL_COLOUR)
    key.append(f"{r.novel_word} (never trained)", style="dim")
    lines.append(key)
    return Group(*lines)
