"""Heatmaps of hidden states over time, gate rows, and the Jacobian triangle.

Cells are spaces with a background colour, so they look the same in every font
(block characters render at different widths and heights across terminals).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from .colors import _color, auto_limits, rgb

SUBWORD_MARK = "▁"  # how a BPE piece (Metaspace) writes the space before a word

# Visible stand-ins for tokens that would otherwise print as nothing or break a line.
_TOKEN_GLYPHS = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍", "": "∅"}

MARK_STYLE = Style(color="#ffd75f", bold=True)  # the current-step marker and border
LABEL_STYLES = (Style(color="#d0d0d0"), Style(color="#8a8a8a"))  # alternate: shows where labels split
DIM = Style(color="#8a8a8a")


def token_label(token: str, width: int | None = None) -> str:
    """A printable, one-line form of a token, cut to ``width`` cells ("…" when width >= 3).

    A subword piece's word-start mark "▁" gives way to its letters when the piece is cut
    ("▁cat" in two cells is "ca", not "▁c"); whole, it stays ("▁a")."""
    if width is not None and token.startswith(SUBWORD_MARK) and len(token) > 1 and cell_len(token) > width:
        token = token[1:]
    if token in _TOKEN_GLYPHS:
        s = _TOKEN_GLYPHS[token]
    else:
        s = "".join(_TOKEN_GLYPHS.get(ch, "·" if not ch.isprintable() else ch) for ch in token)
    if width is not None and cell_len(s) > width:
        s = set_cell_size(s, width - 1) + "…" if width >= 3 else set_cell_size(s, width)
    return s


def _printable(s: str) -> str:
    return "".join(_TOKEN_GLYPHS.get(ch, "·") if not ch.isprintable() else ch for ch in s)


def unit_order(hidden, mode: str = "index", step: int = -1) -> np.ndarray:
    """Row order for a ``hidden[T, H]`` heatmap, as unit indices.

    * ``"index"``: 0, 1, ..., H-1.
    * ``"activation"``: by |hidden[step]|, largest first (strongest units at the top,
      whichever their sign).
    * ``"variance"``: by variance over time, largest first (the units that react to the text).

    Ties keep index order; units with NaN go last.
    """
    h = np.asarray(hidden, dtype=float)
    if h.ndim != 2:
        raise ValueError(f"unit_order expects hidden[T, H], got shape {h.shape}")
    if mode == "index":
        return np.arange(h.shape[1])
    if mode == "activation":
        key = np.abs(h[step])
    elif mode == "variance":
        finite = np.isfinite(h)
        n = finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, h, 0).sum(axis=0) / n
            key = np.where(finite, (h - mean) ** 2, 0).sum(axis=0) / n
    else:
        raise ValueError(f"unknown unit order {mode!r}; expected index, activation or variance")
    key = np.where(np.isnan(key), -np.inf, key)
    return np.argsort(-key, kind="stable")


def _window(total: int, size: int, start: int | None, focus: int | None) -> int:
    """First index of a ``size``-long window; centred on ``focus`` when no start is given."""
    if start is None:
        start = 0 if focus is None else focus - size // 2
    return max(0, min(start, total - size))


class Heatmap:
    """``values[rows, cols]`` (hidden units x timesteps) as coloured cells.

    Layout, top to bottom: a "▼" over the highlighted column, the column labels
    (tokens, cut to the cell width), one line per row with its label right-aligned,
    and a footer "units 16-39 of 256 · steps 1-60 of 300 ↑↓" (row labels, or row counts
    once sorted).

    ``order`` picks and orders the rows (e.g. from :func:`unit_order`); row labels
    default to the original row index, so a sorted map still names real units.
    ``row_offset``/``max_rows`` scroll vertically within that order. Columns that do
    not fit the width are cropped to a window around ``highlight_col`` (or from
    ``col_offset``). ``nan="blank"`` leaves NaN cells empty instead of grey.
    Colour limits default to ±1 (diverging, fixed so colours mean the same at
    every step; pass vmin/vmax for an unbounded LSTM cell state), [0, 1]
    (sequential) or the positive range of the whole array (log).
    """

    def __init__(
        self,
        values,
        *,
        col_labels: Sequence[str] | None = None,
        row_labels: Sequence[str] | None = None,
        order=None,
        highlight_col: int | None = None,
        highlight_row: int | None = None,
        row_offset: int = 0,
        max_rows: int | None = None,
        col_offset: int | None = None,
        max_cols: int | None = None,
        scale: str = "diverging",
        vmin: float | None = None,
        vmax: float | None = None,
        cell_width: int = 2,
        nan: str = "grey",
        row_name: str = "units",
        col_name: str = "steps",
        footer: bool = True,
    ) -> None:
        v = np.asarray(values, dtype=float)
        if v.ndim != 2:
            raise ValueError(f"Heatmap expects a 2-D array, got shape {v.shape}")
        self.values = v
        self.order = np.arange(v.shape[0]) if order is None else np.asarray(order, dtype=int)
        self.col_labels = None if col_labels is None else list(col_labels)
        if row_labels is None:
            row_labels = [str(i) for i in range(v.shape[0])]
        # Row labels are plain text (spaces kept); only control characters are replaced.
        self.row_labels = [_printable(str(s)) for s in row_labels]
        self.highlight_col, self.highlight_row = highlight_col, highlight_row
        self.row_offset, self.max_rows = row_offset, max_rows
        self.col_offset, self.max_cols = col_offset, max_cols
        self.scale, self.vmin, self.vmax = scale, vmin, vmax
        self.cell_width = max(1, int(cell_width))
        self.nan_blank = nan == "blank"
        self.row_name, self.col_name, self.footer = row_name, col_name, footer

    # Row labels are measured over all rows so the map does not shift while scrolling.
    def _label_width(self) -> int:
        return max((cell_len(self.row_labels[i]) for i in self.order), default=0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        lead = self._label_width() + 1
        cols = self.values.shape[1] if self.max_cols is None else min(self.max_cols, self.values.shape[1])
        return Measurement(lead + self.cell_width, lead + max(1, cols) * self.cell_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        n_rows_all, n_cols_all = len(self.order), self.values.shape[1]
        if n_rows_all == 0 or n_cols_all == 0:
            yield Text("(nothing to show)", style=DIM)
            return
        cw, lw = self.cell_width, self._label_width()
        width = options.max_width
        n_cols = max(1, min(n_cols_all, (width - lw - 1) // cw, self.max_cols or n_cols_all))
        c0 = _window(n_cols_all, n_cols, self.col_offset, self.highlight_col)
        n_rows = n_rows_all if self.max_rows is None else max(1, min(self.max_rows, n_rows_all))
        r0 = _window(n_rows_all, n_rows, self.row_offset, None)
        rows = self.order[r0 : r0 + n_rows]
        cols = range(c0, c0 + n_cols)
        lead = Segment(" " * (lw + 1))
        hl = self.highlight_col

        if hl is not None:  # keep this line even when hl is scrolled out, so height is stable
            yield lead
            for c in cols:
                yield Segment(set_cell_size("▼" if c == hl else "", cw), MARK_STYLE if c == hl else None)
            yield Segment.line()
        if self.col_labels is not None:
            yield lead
            for c in cols:
                tok = self.col_labels[c] if c < len(self.col_labels) else ""
                style = MARK_STYLE + Style(reverse=True) if c == hl else LABEL_STYLES[c % 2]
                yield Segment(set_cell_size(token_label(tok, cw), cw), style)
            yield Segment.line()

        block = self.values[np.ix_(rows, np.arange(c0, c0 + n_cols))]
        colours = rgb(block, self.scale, *self._limits())
        nan = np.isnan(block)
        styles: dict[tuple, Style] = {}  # few distinct colours; build each Style once
        edge = "▏▕" if cw == 2 else "▏" + " " * (cw - 2) + "▕" if cw > 2 else "▏"
        for i, r in enumerate(rows):
            label_style = Style(reverse=True) if r == self.highlight_row else DIM
            label = self.row_labels[r]
            yield Segment(" " * (lw - cell_len(label)) + label, label_style)
            yield Segment(" ")
            for j, c in enumerate(cols):
                key = None if (nan[i, j] and self.nan_blank) else tuple(colours[i, j])
                style = styles.get(key)
                if style is None:
                    style = styles[key] = Style(bgcolor=None if key is None else _color(key))
                if c == hl:  # thin bright lines on both sides of the current step
                    yield Segment(edge, style + MARK_STYLE)
                else:
                    yield Segment(" " * cw, style)
            yield Segment.line()

        if self.footer:
            parts = [self._row_footer(r0, n_rows, n_rows_all)]
            if n_cols < n_cols_all:
                parts.append(self._col_footer(c0, n_cols, n_cols_all))
            arrows = ("↑" if r0 > 0 else "") + ("↓" if r0 + n_rows < n_rows_all else "")
            arrows += ("←" if c0 > 0 else "") + ("→" if c0 + n_cols < n_cols_all else "")
            note = " · ".join(parts) + (" " + arrows if arrows else "")
            if cell_len(note) > width:  # narrow: one fact per line rather than a cut-off one
                note = "\n".join(parts[:-1] + [parts[-1] + (" " + arrows if arrows else "")])
            yield Text(note, style=DIM, no_wrap=True, overflow="ellipsis")

    def _col_footer(self, c0: int, n_cols: int, n_all: int) -> str:
        return f"{self.col_name} {c0 + 1}-{c0 + n_cols} of {n_all}"  # steps, counted from 1

    def _row_footer(self, r0: int, n_rows: int, n_all: int) -> str:
        # Name the rows the way their labels do ("units h2-h13 of 64"); once sorted the labels
        # jump about, so count rows instead ("rows 1-12 of 64 units, sorted").
        rows = self.order[r0: r0 + n_rows]
        if np.array_equal(self.order, np.arange(len(self.order))):
            first, last = self.row_labels[rows[0]].strip(), self.row_labels[rows[-1]].strip()
            return f"{self.row_name} {first}-{last} of {n_all}"
        return f"rows {r0 + 1}-{r0 + n_rows} of {n_all} {self.row_name}, sorted"

    def _limits(self) -> tuple:
        # Log limits come from the whole map, not the visible window, so colours hold still
        # while scrolling.
        if self.scale == "log":
            return auto_limits(self.values, "log", self.vmin, self.vmax)
        return self.vmin, self.vmax


class TriangleHeatmap(Heatmap):
    """The Jacobian map: ``norms[t, k]`` = ||d state_t / d state_k|| for k <= t.

    Rows are t, columns are k, both labelled with tokens; log colour scale; the NaN
    upper triangle is left blank. ``highlight`` marks step t (its row and column).
    """

    def __init__(self, norms, tokens: Sequence[str] | None = None, *, highlight: int | None = None,
                 rows=None, **kw) -> None:
        n = np.asarray(norms, dtype=float)
        if rows is not None:  # an estimated map computes only some rows: show those
            kw["order"] = np.asarray(rows, dtype=int)
        if tokens is None:
            tokens = [""] * n.shape[0]
        width = len(str(max(0, n.shape[0] - 1)))
        row_labels = [f"{t:>{width}} {set_cell_size(token_label(tok, 3), 3)}" for t, tok in enumerate(tokens)]
        kw.setdefault("scale", "log")
        kw.setdefault("row_name", "t")
        kw.setdefault("col_name", "k")
        super().__init__(
            n,
            col_labels=tokens,
            row_labels=row_labels,
            highlight_col=highlight,
            highlight_row=highlight,
            nan="blank",
            **kw,
        )

    # Both axes are positions counted from 0, as the row labels show them.
    def _row_footer(self, r0: int, n_rows: int, n_all: int) -> str:
        rows = self.order[r0: r0 + n_rows]
        total = self.values.shape[0]
        if n_all < total:  # some rows only (an estimated map)
            return f"{self.row_name} {int(rows[0])}-{int(rows[-1])} of {total} ({n_all} rows computed)"
        return f"{self.row_name} {int(rows[0])}-{int(rows[-1])} of {n_all}"

    def _col_footer(self, c0: int, n_cols: int, n_all: int) -> str:
        return f"{self.col_name} {c0}-{c0 + n_cols - 1} of {n_all}"


def heat_row(
    values,
    label: str = "",
    width: int | None = None,
    *,
    scale: str = "diverging",
    vmin: float | None = None,
    vmax: float | None = None,
    cell_width: int = 1,
    label_width: int | None = None,
) -> Text:
    """``label`` followed by one coloured cell per value (a gate or the cell state at one step).

    When the row does not fit in ``width`` cells it is folded onto further lines,
    indented under the first, rather than downsampled: averaging neighbouring units
    would hide exactly the saturated ones a gate view is for. With ``width=None``
    it is one line (cropped by Rich if too long).
    """
    v = np.asarray(values, dtype=float).ravel()
    lw = cell_len(label) if label_width is None else label_width
    head = set_cell_size(label, lw) + " " if lw else ""
    per_line = len(v) if width is None else max(1, (width - len(head)) // cell_width)
    colours = rgb(v, scale, vmin, vmax)
    text = Text(no_wrap=True, overflow="crop")
    for start in range(0, max(1, len(v)), per_line):
        if start:
            text.append("\n" + " " * len(head))
        else:
            text.append(head, style="bold")
        for c in colours[start : start + per_line]:
            text.append(" " * cell_width, style=Style(bgcolor=_color(c)))
    return text
