"""The zog experiment's views: the PCA plane of word states with each category's centroid and
the novel word, as read (its own letters) and in context (the next word read)."""

from __future__ import annotations

import numpy as np

from .plotting import PALETTE
from .views import LabViews

NOVEL = (255, 255, 255)

views = LabViews("zog")


def _short_cat(cat: str) -> str:
    parts = str(cat).lower().split("_")
    return ".".join(parts[1:]) if len(parts) > 1 and parts[0] in ("noun", "verb") else parts[0]


def _categories_key(r) -> list[tuple[str, tuple]]:
    return [(_short_cat(c), PALETTE[i % len(PALETTE)]) for i, c in enumerate(r.category_names)] + \
        [(r.novel_word, NOVEL)]


class _Labels:
    """Where text labels go on the chart, in terminal cells: one that would overlap a label
    already placed is left out (the key under the chart names every colour anyway)."""

    def __init__(self, xlim, ylim, width: int, height: int) -> None:
        self.xlim, self.ylim = xlim, ylim
        self.cols, self.rows = max(1, width - 8), max(1, height - 5)  # minus the axes and the title
        self.taken: list[tuple[int, int, int]] = []  # (row, first column, last column)

    def place(self, plt, text: str, x: float, y: float, colour) -> None:
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        col = int((x - x0) / max(x1 - x0, 1e-12) * (self.cols - 1))
        row = int((y1 - y) / max(y1 - y0, 1e-12) * (self.rows - 1))
        span = (col - 1, col + len(text) + 1)  # a cell of air on either side
        if any(r == row and a < span[1] and span[0] < b for r, a, b in self.taken):
            return
        self.taken.append((row, *span))
        plt.text(text, x, y, color=colour)


def _plane(plt, r, view: str, pts, cents, novel, nearest, width: int, height: int) -> None:
    pts, cents, novel = (np.asarray(a, dtype=float) for a in (pts, cents, novel))
    plt.title(f"word states, PCA ({view}) · {r.novel_word} is nearest {nearest}")
    every = np.concatenate([p for p in (pts, cents, novel.reshape(-1, 2)) if p.size]) if pts.size else pts
    every = every[np.isfinite(every).all(axis=1)] if every.size else every
    labels = None
    if len(every):
        lo, hi = every.min(axis=0), every.max(axis=0)
        pad = np.maximum((hi - lo) * 0.05, 1e-6)
        xlim, ylim = (float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1]))
        plt.xlim(*xlim)
        plt.ylim(*ylim)
        labels = _Labels(xlim, ylim, width, height)
    if labels is not None and np.isfinite(novel).all():  # the novel word's label first: it matters most
        labels.place(plt, f" {r.novel_word}", float(novel[0]), float(novel[1]), NOVEL)
    cats = list(r.category_names)
    for ci, cat in enumerate(cats):
        sel = np.asarray([c == cat for c in r.categories])
        colour = PALETTE[ci % len(PALETTE)]
        if sel.any():
            plt.scatter(pts[sel, 0].tolist(), pts[sel, 1].tolist(), color=colour, marker="•")
        if labels is not None and ci < len(cents) and np.isfinite(cents[ci]).all():
            labels.place(plt, _short_cat(cat), float(cents[ci, 0]), float(cents[ci, 1]), colour)
    if np.isfinite(novel).all():
        plt.scatter([float(novel[0])], [float(novel[1])], color=NOVEL, marker="◆")


@views.chart("as read", key=_categories_key, marker="● ")
def as_read(plt, r, width: int, height: int) -> None:
    _plane(plt, r, "as read", r.points_read, r.centroids_read, r.novel_read, r.nearest_read, width, height)


@views.chart("in context", key=_categories_key, marker="● ")
def in_context(plt, r, width: int, height: int) -> None:
    _plane(plt, r, "in context", r.points_context, r.centroids_context, r.novel_context, r.nearest_context,
           width, height)
