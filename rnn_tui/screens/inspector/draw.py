"""What the Inspector screen draws: the sentence with its span and attribution, the selected
units over the sentence, and the matches in the corpus, as functions of the screen's state
(``v``: the InspectorScreen, read only)."""

from __future__ import annotations

import math

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text

from ...render.colors import _color, legend, rgb
from ...render.heatmap import token_label

SPAN_STYLE = Style(color="#000000", bgcolor="#ffd75f", bold=True)
MARK_STYLE = Style(color="#000000", bgcolor="#5fafff", bold=True)
DIM = Style(color="#8a8a8a")
GUTTER = 6  # "text  " / "attr  " / "u17   " labels left of the sentence
THRESHOLD_STEP = 0.05
VALUE_LABELS = {"hidden": "hidden h", "cell": "cell c", "i": "input gate i", "f": "forget gate f",
                "g": "candidate g", "o": "output gate o", "r": "reset gate r", "z": "update gate z",
                "n": "candidate n"}
METHOD_LABELS = {"grad_x_input": "gradient×input", "occlusion": "occlusion"}

def span_of(cursor: int, length: int) -> tuple[int, int]:
    """(start, end) with end exclusive; the span ends at the cursor."""
    return max(0, cursor - length + 1), cursor + 1


def token_cells(tokens, level: str) -> list[str]:
    """The printable form of each token as drawn on the sentence line (spaces kept)."""
    if level == "word":
        return [token_label(t) for t in tokens]
    return [" " if t == " " else token_label(t) for t in tokens]


def value_scale(v) -> tuple[str, float, float]:
    if v.value in ("i", "f", "o", "r", "z"):
        return "sequential", 0.0, 1.0
    if v.value == "cell" and v.trace is not None:
        c = v.trace.gates.get("c")
        lim = max(1.0, float(np.nanmax(np.abs(c)))) if c is not None else 1.0
        return "diverging", -lim, lim
    return "diverging", -1.0, 1.0

def window(v, width: int) -> tuple[list[str], int, int]:
    """The token cells and the first and last token that fit ``width`` around the span."""
    tr = v.trace
    level = v.lm.vocab.level if v.lm is not None else "char"
    cells = token_cells(tr.tokens, level)
    sep = 1 if level == "word" else 0
    widths = [cell_len(c) + sep for c in cells]
    avail = max(4, width - GUTTER)
    if sum(widths) <= avail:
        return cells, 0, len(cells)
    # Centre the span's end, then take what fits.
    a, b = v.cursor, v.cursor + 1
    used = widths[v.cursor]
    while True:
        grew = False
        if b < len(cells) and used + widths[b] <= avail and (b - v.cursor <= v.cursor - a or a == 0):
            used += widths[b]
            b += 1
            grew = True
        if a > 0 and used + widths[a - 1] <= avail:
            a -= 1
            used += widths[a]
            grew = True
        if not grew:
            break
    return cells, a, b

def build_sentence(v, width: int, height: int) -> RenderableType:
    tr = v.trace
    if tr is None or not len(tr.tokens):
        return Text(v.app.sentence, style=DIM, no_wrap=True, overflow="ellipsis")
    level = v.lm.vocab.level if v.lm is not None else "char"
    cells, a, b = window(v, width)
    start, end = span_of(v.cursor, v.span_len)
    sep = " " if level == "word" else ""
    span_txt = sep.join(tr.tokens[start:end])
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append("span ", style="dim")
    head.append(f"“{token_label(span_txt) if level == 'word' else span_txt.replace(chr(10), '⏎')}”",
                style="bold #ffd75f")
    head.append(f" tokens {start + 1}-{end} of {len(tr.tokens)} · ", style="dim")
    n = len(v.units)
    head.append(f"{n} unit{'s' if n != 1 else ''} on", style="bold")
    line = Text(no_wrap=True, overflow="crop")
    line.append("text".ljust(GUTTER), style=DIM)
    for i in range(a, b):
        if i > a:
            line.append(sep)
        style = SPAN_STYLE if start <= i < end else (Style() if i < start else DIM)
        line.append(cells[i], style=style)
    attr_line, note = attribution_lines(v, cells, a, b, sep, width)
    return Group(head, line, attr_line, note)

def attribution_lines(v, cells, a: int, b: int, sep: str, width: int) -> tuple[Text, Text]:
    att = v.attribution
    row = Text(no_wrap=True, overflow="crop")
    row.append("attr".ljust(GUTTER), style=DIM)
    note = Text(no_wrap=True, overflow="ellipsis")
    if att is None or len(att.scores) != len(cells):
        row.append("computing…", style=DIM)
        return row, note
    s = np.asarray(att.scores, dtype=float)
    finite = s[np.isfinite(s)]
    lim = float(np.abs(finite).max()) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    colours = rgb(np.where(np.isfinite(s), s / lim, np.nan), "diverging", -1.0, 1.0)
    for i in range(a, b):
        if i > a:
            row.append(sep)
        if not math.isfinite(s[i]):
            row.append(" " * cell_len(cells[i]))
        else:
            row.append(" " * cell_len(cells[i]), style=Style(bgcolor=_color(colours[i])))
    note.append("attr".ljust(GUTTER) if False else " " * GUTTER)
    target = token_label(att.target)
    note.append(f"p(“{target}” next)={att.target_prob:.2f}", style="bold")
    note.append(" actual next" if att.actual_next else " top guess", style="dim")
    note.append(" · red supports, blue opposes · ", style="dim")
    if width > 90:
        short = float(f"{lim:.2g}")
        note.append_text(legend("diverging", 22, -short, short))
    return row, note

def build_units(v, width: int, height: int) -> RenderableType:
    tr = v.trace
    if tr is None or not len(tr.tokens):
        return Text("")
    values = v.sentence_values()
    if values is None:
        return Text("")
    level = v.lm.vocab.level if v.lm is not None else "char"
    cells, a, b = window(v, width)
    sep = " " if level == "word" else ""
    units = v.units
    title = Text(no_wrap=True, overflow="ellipsis")
    if not len(units):  # advice wraps: it is the only thing this panel says
        advice = Text(f"no unit stays ≥ {v.threshold:+.2f} over the span", style="bold")
        advice.append(": - lowers the threshold, [ shortens the span", style="dim")
        return advice
    if height >= 1000:  # measuring for height: auto
        max_rows = 8
    elif len(units) <= height - 1:  # all fit under the title: no "… more" line needed
        max_rows = len(units)
    else:
        max_rows = max(1, height - 2)
    shown = units[:max_rows]
    title.append(f"{len(units)} unit{'s' if len(units) != 1 else ''} on: ", style="dim")
    title.append(" ".join(f"u{u}" for u in units[:24]) + (" …" if len(units) > 24 else ""), style="bold")
    scale, vmin, vmax = value_scale(v)
    colours = rgb(values[:, shown].T, scale, vmin, vmax)  # [k, T, 3]
    start, end = span_of(v.cursor, v.span_len)
    lines: list = [title]
    for r, u in enumerate(shown):
        row = Text(no_wrap=True, overflow="crop")
        row.append(f"u{u}".ljust(GUTTER), style=DIM)
        for i in range(a, b):
            if i > a:
                row.append(sep)
            w = cell_len(cells[i])
            on = values[i, u] >= v.threshold
            ch = ("▔" if start <= i < end else "·" if on else " ")
            row.append(set_cell_size(ch * w, w), style=Style(bgcolor=_color(colours[r, i]),
                                                              color="#000000" if start <= i < end else "#d0d0d0"))
        lines.append(row)
    if len(units) > len(shown):
        lines.append(Text(f"{' ' * GUTTER}… {len(units) - len(shown)} more", style=DIM))
    return Group(*lines)

def build_matches(v, width: int, height: int) -> RenderableType:
    if v.trace is None:
        return Text("")
    key = v.corpus_key()
    states = v.states.get(key)
    head = Text(no_wrap=True, overflow="ellipsis")
    if states is None:
        done, total, seconds = v.progress or (0, 0, 0.0)
        pct = f" {100 * done / total:.0f}%" if total else ""
        if done and total and seconds > 0.5:  # what it costs, as it runs
            left = seconds * (total - done) / done
            pct += f" · {seconds:.0f} s so far, about {left:.0f} s left · {done / seconds / 1e3:.0f}k tokens/s"
        if not v.encoder.busy:
            head = Text(f"cannot search the corpus: {v.corpus_error or 'the last try failed'}", style="red")
        else:
            head.append(f"encoding the corpus with this model…{pct}", style="bold yellow")
            head.append(" · escape stops", style="dim")
        return head
    head.append("matches", style="bold")
    head.append(f" in {v.corpus_name} ({states.n_tokens:,} tokens)", style="dim")
    if not states.complete:
        done = 100 * states.steps_done / max(1, states.steps_total)
        head.append(f" · encode stopped at {done:.0f}%: searching that part (escape encodes it all)",
                    style="yellow")
    if not len(v.units):
        return head
    m = v.matches
    if m is None:
        head.append(" · searching…", style="yellow")
        return head
    head.append(f" · {m.total:,} run{'s' if m.total != 1 else ''}", style="bold")
    if len(m.matches) > 1:
        head.append(", best first · ↑↓", style="dim")
    lines: list = [head]
    if not m.matches:
        lines.append(Text("these units are never all on together elsewhere for that long",
                          style=DIM, no_wrap=True, overflow="ellipsis"))
        return Group(*lines)
    # What the numbers before each match are: the legend the list needs (one line).
    lines.append(Text(f" # score: {len(v.units)} selected units on, minus others on with them · len: tokens",
                      style=DIM, no_wrap=True, overflow="ellipsis"))
    rows = max(1, height - 2) if height < 1000 else 10
    for i, match in enumerate(m.matches[v.match_offset:v.match_offset + rows]):
        rank = v.match_offset + i + 1
        lines.append(match_line(v, rank, match, width))
    return Group(*lines)

def match_line(v, rank: int, match, width: int) -> Text:
    prefix = f"{rank:>2} {match.score:>+3d} len {match.length:<2} "
    avail = max(10, width - len(prefix))
    text, m0, m1 = match.snippet, match.mark_start, match.mark_end
    inner = m1 - m0
    left_room = max(0, (avail - inner) // 2)
    a = max(0, m0 - left_room)
    b = min(len(text), a + avail)
    a = max(0, min(a, b - avail))
    line = Text(no_wrap=True, overflow="crop")
    line.append(prefix, style=DIM)
    line.append(text[a:m0])
    line.append(text[m0:m1], style=MARK_STYLE)
    line.append(text[m1:b])
    return line
