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


def _plane(plt, r, view: str, pts, cents, novel, nearest) -> None:
    pts, cents, novel = (np.asarray(a, dtype=float) for a in (pts, cents, novel))
    plt.title(f"word states, PCA ({view}) · {r.novel_word} is nearest {nearest}")
    cats = list(r.category_names)
    for ci, cat in enumerate(cats):
        sel = np.asarray([c == cat for c in r.categories])
        colour = PALETTE[ci % len(PALETTE)]
        if sel.any():
            plt.scatter(pts[sel, 0].tolist(), pts[sel, 1].tolist(), color=colour, marker="•")
        if ci < len(cents) and np.isfinite(cents[ci]).all():
            plt.text(_short_cat(cat), float(cents[ci, 0]), float(cents[ci, 1]), color=colour)
    if np.isfinite(novel).all():
        plt.scatter([float(novel[0])], [float(novel[1])], color=NOVEL, marker="◆")
        plt.text(f" {r.novel_word}", float(novel[0]), float(novel[1]), color=NOVEL)


@views.chart("as read", key=_categories_key, marker="● ")
def as_read(plt, r, width: int, height: int) -> None:
    _plane(plt, r, "as read", r.points_read, r.centroids_read, r.novel_read, r.nearest_read)


@views.chart("in context", key=_categories_key, marker="● ")
def in_context(plt, r, width: int, height: int) -> None:
    _plane(plt, r, "in context", r.points_context, r.centroids_context, r.novel_context, r.nearest_context)
