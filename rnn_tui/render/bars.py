"""Horizontal probability bars: the model's top-k guesses, and a model comparison."""

from __future__ import annotations

import math

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from .heatmap import token_label

_EIGHTHS = " ▏▎▍▌▋▊▉"  # partial blocks give 8 steps per cell, so close bars still differ
BAR = "#5f87d7"
ACTUAL = "#ffaf00"
GOOD, BAD, EVEN = "#5fd75f", "#ff5f5f", "#d7d75f"
DIM = "#8a8a8a"
LABEL_MAX = 12  # long word tokens are cut so the bars keep most of the width


def bar(fraction: float, width: int) -> str:
    """A bar ``fraction`` of ``width`` cells long, padded to ``width``; a non-zero value
    always shows at least a sliver."""
    if not math.isfinite(fraction) or width <= 0:
        return " " * max(0, width)
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1
    s = "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
    return s.ljust(width)


def pct(p: float) -> str:
    """6 cells: ' 42.0%', '<0.1%', '  n/a'."""
    if p is None or not math.isfinite(p):
        return "n/a".rjust(6)
    if 0 < p < 0.001:
        return "<0.1%".rjust(6)
    return f"{p * 100:5.1f}%"


def nats(p: float) -> float:
    return -math.log(p) if p > 0 else math.inf


class ProbBars:
    """Top-k next-token probabilities, one line each: ``label  ████▌  42.0%``.

    ``items`` is a sequence of ``(token, probability)``, best first. ``marked`` is the
    actual next token: a string, or ``(token, prob)`` / ``(token, prob, loss_nats)``.
    Its line is drawn in a different colour with "◀ actual"; if it is not among the
    items, an extra last line shows it with its probability and loss in nats.
    Bars are scaled so the largest item fills the bar width.
    """

    def __init__(self, items, width: int | None = None, marked=None) -> None:
        self.items = [(str(t), float(p)) for t, p in items]
        self.width = width
        self.marked_token, self.marked_prob, self.marked_loss = None, None, None
        if isinstance(marked, str):
            self.marked_token = marked
        elif marked is not None:
            self.marked_token = str(marked[0])
            self.marked_prob = float(marked[1])
            self.marked_loss = float(marked[2]) if len(marked) > 2 else nats(self.marked_prob)

    @classmethod
    def from_trace(cls, trace, step: int, width: int | None = None, actual_token: str | None = None) -> "ProbBars":
        """Bars for one step of an engine ``Trace`` (topk_* / next_* arrays).

        The actual token is found by id among the top-k; otherwise it is named by
        ``actual_token`` or, failing that, the next input token ``trace.tokens[step+1]``.
        """
        items = list(zip(trace.topk_tokens[step], trace.topk_probs[step]))
        nid = int(trace.next_ids[step])
        if nid < 0:
            return cls(items, width)
        ids = [int(i) for i in trace.topk_ids[step]]
        if actual_token is None:
            if nid in ids:
                actual_token = str(trace.topk_tokens[step][ids.index(nid)])
            elif step + 1 < len(trace.tokens):
                actual_token = str(trace.tokens[step + 1])
            else:
                actual_token = "?"
        return cls(items, width, (actual_token, float(trace.next_prob[step]), float(trace.next_loss[step])))

    def _rows(self) -> list[tuple[str, float | None, bool]]:
        rows = [(t, p, t == self.marked_token) for t, p in self.items]
        if self.marked_token is not None and not any(m for _, _, m in rows):
            rows.append((self.marked_token, self.marked_prob, True))
        return rows

    def _label_width(self) -> int:
        return max((cell_len(token_label(t, LABEL_MAX)) for t, _, _ in self._rows()), default=1)

    def _tail(self, in_top: bool) -> str:
        if self.marked_token is None:
            return ""
        if in_top:
            return " ◀ actual"
        loss = "?" if self.marked_loss is None else f"{self.marked_loss:.2f}"
        return f" ◀ actual · {loss} nats"

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        fixed = self._label_width() + 2 + 6 + cell_len(self._tail(False))
        return Measurement(fixed + 4, self.width or options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = self._rows()
        if not rows:
            yield Text("(no predictions)", style=DIM)
            return
        width = min(self.width or options.max_width, options.max_width)
        lw = self._label_width()
        tail_w = max(cell_len(self._tail(i < len(self.items))) for i in range(len(rows)))
        bar_w = max(4, width - lw - 2 - 6 - tail_w)
        top = max((p for _, p, _ in rows if p is not None and math.isfinite(p)), default=0.0)
        for i, (tok, p, is_actual) in enumerate(rows):
            in_top = i < len(self.items)
            colour = ACTUAL if is_actual else BAR
            frac = (p / top) if (p is not None and top > 0) else 0.0
            line = Text(no_wrap=True, overflow="crop")
            line.append(set_cell_size(token_label(tok, LABEL_MAX), lw), style=f"bold {colour}" if is_actual else "")
            line.append(" ")
            line.append(bar(frac, bar_w), style=colour)
            line.append(" ")
            line.append(pct(p), style="bold" if is_actual else "")
            if is_actual:
                line.append(self._tail(in_top), style=f"bold {ACTUAL}")
            yield line


class ConfidenceBars:
    """Several models on one question: ``label  ██████░░░░  61.0%  note`` per row.

    ``rows`` are ``(label, p_correct)`` or ``(label, p_correct, note)``. Bars are on an
    absolute 0..1 scale (so rows compare), green above ``threshold``, red below,
    yellow exactly at it, grey when unknown (NaN).
    """

    def __init__(self, rows, width: int | None = None, threshold: float = 0.5) -> None:
        self.rows = [(str(r[0]), float(r[1]), str(r[2]) if len(r) > 2 else "") for r in rows]
        self.width, self.threshold = width, threshold

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        lw = max((cell_len(r[0]) for r in self.rows), default=0)
        return Measurement(lw + 12, self.width or options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = min(self.width or options.max_width, options.max_width)
        lw = max((cell_len(r[0]) for r in self.rows), default=0)
        note_w = max((cell_len(r[2]) + 1 for r in self.rows if r[2]), default=0)
        bar_w = max(4, width - lw - 2 - 6 - note_w)
        for label, p, note in self.rows:
            if not math.isfinite(p):
                colour = DIM
            else:
                colour = GOOD if p > self.threshold else BAD if p < self.threshold else EVEN
            filled = bar(p if math.isfinite(p) else 0.0, bar_w).rstrip()
            line = Text(no_wrap=True, overflow="crop")
            line.append(set_cell_size(label, lw) + " ")
            line.append(filled, style=colour)
            line.append("░" * (bar_w - cell_len(filled)), style=DIM)  # the track shows the 100% mark
            line.append(" ")
            line.append(pct(p), style=f"bold {colour}")
            if note:
                line.append(" " + note, style=DIM)
            yield line
