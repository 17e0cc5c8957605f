"""Mode 7, Lab: every experiment of the engine as a preset.

Pick one from the list (its two-line explanation shows beside it), enter runs it in a thread
worker with a progress bar, escape or ctrl+c stops it (the partial result is still drawn).
The result is drawn as charts (loss curves, the parity trajectory coloured by parity, zog's
PCA plane with category labels, agreement by distractor length, memory by lag...) or text
(temperature samples side by side), with the experiment's own table and findings under it.
v cycles the views of a result; q switches between the default and the quick settings.

Results are kept in ``app.session.lab_results`` (name -> result) so other screens can use them (the
dynamics screen shows the memory horizon per hidden size from it).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker

from ..render.bars import bar
from ..render.ticks import log_ticks
from . import LOADING_TEXT, ModeBar, report_worker_error
from ..widgets.chart import Chart

# Series colours, in order (runs, cells, schemes...).
PALETTE = ((86, 156, 255), (250, 100, 100), (96, 206, 120), (255, 215, 95), (200, 130, 255),
           (80, 220, 220), (255, 150, 60))
CELL_COLORS = {"rnn": (250, 100, 100), "lstm": (86, 156, 255), "gru": (96, 206, 120)}
EVEN, ODD, NEITHER = (86, 156, 255), (250, 100, 100), (140, 140, 140)

# The experiments in the order of the list, when the engine does not say (it does: EXPERIMENTS).
VIEWS: dict[str, tuple[str, ...]] = {
    "parity": ("trajectory", "loss", "by position"),
    "init-schemes": ("loss", "radius", "gradient"),
    "clipping": ("loss", "gradient norm"),
    "tbptt": ("accuracy", "loss"),
    "zog": ("as read", "in context"),
    "temperature": ("samples", "statistics"),
    "agreement": ("accuracy", "p(right verb)", "loss"),
    "memory-horizon": ("by lag", "horizon"),
    "spectral": ("tanh", "linear", "gradient"),
}
TEXT_VIEWS = {("temperature", "samples"), ("temperature", "statistics")}


def registry():
    """The engine's experiments (imports torch: call from a worker or once the engine is up)."""
    from ..engine.experiments import EXPERIMENTS

    return EXPERIMENTS


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ------------------------------------------------------------------------ messages
@dataclass
class LabProgress(Message):
    run_id: int
    fraction: float
    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LabProgress) and message.run_id == self.run_id


@dataclass
class LabDone(Message):
    run_id: int
    name: str
    result: Any


# ------------------------------------------------------------------------ drawing
def _finite(x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _line(plt, x, y, colour, label=None) -> bool:
    x, y = _finite(x, y)
    if len(x) == 0:
        return False
    if len(x) == 1:
        plt.scatter(x.tolist(), y.tolist(), color=colour, marker="•")
    else:
        plt.plot(x.tolist(), y.tolist(), color=colour, marker="braille")  # key: series_key()
    return True


def _log_lines(plt, xs, ys, colours, labels=None, height: int = 20) -> None:
    """Lines of positive values on a log10 axis drawn as linear with decade ticks."""
    lo, hi = math.inf, -math.inf
    for i, (x, y) in enumerate(zip(xs, ys)):
        y = np.asarray(y, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ly = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
        x2, y2 = _finite(x, ly)
        if len(x2):
            lo, hi = min(lo, float(y2.min())), max(hi, float(y2.max()))
            _line(plt, x2, y2, colours[i], labels[i] if labels else None)
    if lo <= hi:
        if hi - lo < 0.3:
            lo, hi = lo - 0.15, hi + 0.15
        plt.yticks(*log_ticks(lo, hi, max_ticks=max(2, (height - 4) // 2)))


def _pca2(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.shape[1] <= 2:
        return p if p.shape[1] == 2 else np.column_stack([p[:, 0], np.zeros(len(p))])
    c = p - p.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    return c @ vt[:2].T


def draw_result(plt, name: str, view: str, r, width: int, height: int) -> None:
    """Draw one view of an experiment's result on a plotext figure."""
    if name == "parity":
        if view == "trajectory":
            pts = _pca2(r.hidden)
            par = np.asarray(r.parity)
            plt.title("hidden state after each bit: blue = even so far, red = odd")
            plt.plot(pts[:, 0].tolist(), pts[:, 1].tolist(), color=(70, 70, 70), marker="braille")
            for value, colour in ((0, EVEN), (1, ODD), (-1, NEITHER)):
                sel = par == value
                if sel.any():
                    plt.scatter(pts[sel, 0].tolist(), pts[sel, 1].tolist(), color=colour, marker="●")
            plt.xlabel("h1")
            plt.ylabel("h2")
        elif view == "loss":
            plt.title("training loss (parity corpus)")
            _line(plt, r.steps, r.loss, PALETTE[0])
            plt.xlabel("step")
        else:
            plt.title("accuracy by bit position in the sequence")
            acc = np.nan_to_num(np.asarray(r.accuracy_by_position, dtype=float))
            plt.bar(list(range(1, len(acc) + 1)), acc.tolist(), color=PALETTE[2])
            plt.ylim(0, 1.05)
            plt.yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
            plt.xlabel("bit index")
    elif name == "init-schemes":
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(r.schemes))]
        if view == "loss":
            for i, s in enumerate(r.schemes):
                _line(plt, r.steps, r.loss[i], colours[i], s)
            _cap_loss(plt, list(r.loss), "training loss per init scheme")
            plt.xlabel("step")
        elif view == "radius":
            plt.title("spectral radius of W while training")
            for i, s in enumerate(r.schemes):
                _line(plt, r.radius_steps, r.radius[i], colours[i], s)
            plt.horizontal_line(1.0, color=(110, 110, 110))
            plt.xlabel("step")
        else:
            plt.title("‖dL/dh_t‖ after training, log")
            T = r.grad_final.shape[1]
            _log_lines(plt, [np.arange(T)] * len(r.schemes), list(r.grad_final), colours,
                       list(r.schemes), height)
            plt.xlabel("position t")
    elif name == "clipping":
        colours = [PALETTE[1], PALETTE[0]]
        if view == "loss":
            for i, run in enumerate(r.runs):
                _line(plt, r.steps, r.loss[i], colours[i], run)
            _cap_loss(plt, list(r.loss), "training loss")
            if math.isfinite(r.uniform_loss):
                plt.horizontal_line(r.uniform_loss, color=(110, 110, 110))
        else:
            plt.title("gradient norm before clipping, log")
            _log_lines(plt, [r.steps] * len(r.runs), list(r.grad_norm), colours, list(r.runs), height)
        plt.xlabel("step")
    elif name == "tbptt":
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(r.seq_lens))]
        labels = [f"window {int(L)}" for L in r.seq_lens]
        if view == "accuracy":
            plt.title("agreement accuracy by distractor length, per TBPTT window")
            for i in range(len(r.seq_lens)):
                _line(plt, r.distractors, r.accuracy[i], colours[i], labels[i])
            plt.ylim(0, 1.05)
            plt.yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
            plt.horizontal_line(0.5, color=(110, 110, 110))
            plt.xlabel("distractor words")
        else:
            plt.title("training loss")
            for i in range(len(r.seq_lens)):
                _line(plt, np.arange(1, r.loss.shape[1] + 1), r.loss[i], colours[i], labels[i])
            plt.xlabel("step")
    elif name == "zog":
        read = view == "as read"
        pts = np.asarray(r.points_read if read else r.points_context, dtype=float)
        cents = np.asarray(r.centroids_read if read else r.centroids_context, dtype=float)
        novel = np.asarray(r.novel_read if read else r.novel_context, dtype=float)
        nearest = r.nearest_read if read else r.nearest_context
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
            plt.scatter([float(novel[0])], [float(novel[1])], color=(255, 255, 255), marker="◆")
            plt.text(f" {r.novel_word}", float(novel[0]), float(novel[1]), color=(255, 255, 255))
    elif name == "agreement":
        colours = [_cell_colour(c, i) for i, c in enumerate(r.cells)]
        if view == "accuracy":
            plt.title("accuracy at the verb by distractor length")
            for i, c in enumerate(r.cells):
                _line(plt, r.distractors, r.accuracy[i], colours[i], c)
            plt.ylim(0, 1.05)
            plt.yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
            plt.horizontal_line(0.5, color=(110, 110, 110))
            plt.xlabel("distractor words")
        elif view == "p(right verb)":
            plt.title("P(right verb form) by distractor length")
            for i, c in enumerate(r.cells):
                _line(plt, r.distractors, r.p_correct[i], colours[i], c)
            plt.ylim(0, 1.05)
            plt.yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
            plt.horizontal_line(0.5, color=(110, 110, 110))
            plt.xlabel("distractor words")
        else:
            plt.title("training loss (same budget)")
            for i, c in enumerate(r.cells):
                _line(plt, np.arange(1, r.loss.shape[1] + 1), r.loss[i], colours[i], c)
            plt.xlabel("step")
    elif name == "memory-horizon":
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(r.labels))]
        if view == "by lag":
            plt.title("TV of p(next) when the token k back is replaced, log")
            _log_lines(plt, [r.lags] * len(r.labels), list(r.tv), colours, list(r.labels), height)
            thr = math.log10(r.threshold)
            plt.horizontal_line(thr, color=(110, 110, 110))
            plt.xlabel("k tokens back")
        else:
            plt.title(f"memory horizon (TV ≥ {r.threshold:g}) per model")
            plt.bar(list(r.labels), np.asarray(r.horizon, dtype=float).tolist(), color=PALETTE[0])
    elif name == "spectral":
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(r.radii))]
        labels = [f"ρ={x:g}" for x in r.radii]
        if view in ("tanh", "linear"):
            norms = r.norm_tanh if view == "tanh" else r.norm_linear
            plt.title(f"recurrence alone: ‖h_t‖, h ← {'tanh(ρW h)' if view == 'tanh' else 'ρW h'}, log")
            _log_lines(plt, [np.arange(norms.shape[1])] * len(r.radii), list(norms), colours, labels, height)
            plt.xlabel("step")
        else:
            plt.title("‖dL/dh_t‖ of a vanilla RNN at each radius, log")
            T = r.grad.shape[1]
            _log_lines(plt, [np.arange(T)] * len(r.radii), list(r.grad), colours, labels, height)
            plt.xlabel("position t")


def series_key(name: str, view: str, r) -> list[tuple[str, tuple]]:
    """(label, colour) of each series drawn, for the key line under the chart."""
    if name == "parity":
        return [("even", EVEN), ("odd", ODD), ("'.'", NEITHER)] if view == "trajectory" else []
    if name == "init-schemes":
        return [(s, PALETTE[i % len(PALETTE)]) for i, s in enumerate(r.schemes)]
    if name == "clipping":
        return [(run, c) for run, c in zip(r.runs, (PALETTE[1], PALETTE[0]))]
    if name == "tbptt":
        return [(f"window {int(L)}", PALETTE[i % len(PALETTE)]) for i, L in enumerate(r.seq_lens)]
    if name == "zog":
        return [(_short_cat(c), PALETTE[i % len(PALETTE)]) for i, c in enumerate(r.category_names)] + \
            [(r.novel_word, (255, 255, 255))]
    if name == "agreement":
        return [(c, _cell_colour(c, i)) for i, c in enumerate(r.cells)]
    if name == "memory-horizon" and view == "by lag":
        return [(lab, PALETTE[i % len(PALETTE)]) for i, lab in enumerate(r.labels)]
    if name == "spectral":
        return [(f"ρ={x:g}", PALETTE[i % len(PALETTE)]) for i, x in enumerate(r.radii)]
    return []


def _cell_colour(cell: str, i: int):
    return CELL_COLORS.get(cell, PALETTE[i % len(PALETTE)])


def _short_cat(cat: str) -> str:
    parts = str(cat).lower().split("_")
    return ".".join(parts[1:]) if len(parts) > 1 and parts[0] in ("noun", "verb") else parts[0]


def text_view(name: str, view: str, r, width: int) -> RenderableType:
    """Views that are text, not charts: temperature samples side by side, its statistics."""
    if view == "samples":
        table = Table.grid(padding=(0, 1), expand=True)
        for _ in r.temperatures:
            table.add_column(ratio=1, overflow="fold")
        table.add_row(*[Text(f"T = {t:g}", style="bold") for t in r.temperatures])
        table.add_row(*[Text(r.prime, style="bold #ffd75f") + Text(txt) for txt in r.texts])
        return table
    table = Table(show_edge=False, box=None, padding=(0, 1))
    table.add_column("T", style="bold")
    for stat in r.stats:
        table.add_column(stat.replace("_", " "), justify="right")
    for k, t in enumerate(r.temperatures):
        table.add_row(f"{t:g}", *[_fmt(r.stats[s][k]) for s in r.stats])
    return table


def _fmt(x) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f"{v:.2f}" if math.isfinite(v) else "-"


def summary_text(result) -> Group:
    """Findings first (wrapped), then the table (one row a line, cut at the edge)."""
    parts: list = []
    if result.stopped:
        parts.append(Text("stopped early: a partial result", style="yellow"))
    for f in result.findings():
        parts.append(Text("• " + f, style="#5fd787"))
    for row in result.table():
        parts.append(Text(row, no_wrap=True, overflow="ellipsis"))
    return Group(*parts)


def _cap_loss(plt, rows, title: str) -> None:
    """Keep a blown-up run from flattening the others: cap y at 3x the median loss, and say
    so in the title (the findings quote the true peak, which is then off the chart)."""
    vals = np.concatenate([np.ravel(np.asarray(r, dtype=float)) for r in rows]) if len(rows) else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size:
        lo, hi, med = float(vals.min()), float(vals.max()), float(np.median(vals))
        if hi > 3 * med > lo:
            plt.ylim(lo, 3 * med)
            title += f" · peaks to {hi:.3g} cut off"
    plt.title(title)


# ------------------------------------------------------------------------ the screen
class LabScreen(Screen):
    """Run the engine's experiments and draw what they found."""

    MODE, KEY, LABEL, SHORT = "lab", "7", "Lab", "Lab"
    TOOLTIP = "Run the experiments: parity, inits, clipping, TBPTT, zog, temperature…"
    PANEL_HELP = {
        "experiments": "Every experiment as a preset; its two-line explanation is shown beside the list.\n"
                       "enter runs it (q: quick settings), escape or ctrl+c stops it; the partial result stays.",
        "result": "What the experiment measured, drawn (v cycles the views), then its table and findings.\n"
                  "Runs are seeded: the same settings give the same numbers.",
    }
    BINDINGS = [
        Binding("r", "run", "Run", id="lab.run", key_display="⏎/r",
                tooltip="Run the selected experiment in the background (enter or r)"),
        Binding("escape,ctrl+c", "cancel", "Stop", id="lab.cancel",
                tooltip="Stop the running experiment (what it measured so far is drawn)"),
        Binding("v", "cycle_view", "View", id="lab.view", tooltip="Cycle the views of the result"),
        Binding("q", "toggle_quick", "Quick", id="lab.quick",
                tooltip="Switch the next run between the default and the quick (smoke-test) settings"),
        # priority: the experiment list has the focus and would take page up/down for itself
        Binding("pageup", "scroll_summary(-1)", "Scroll", id="lab.up", show=False, priority=True,
                tooltip="Scroll the summary up"),
        Binding("pagedown", "scroll_summary(1)", "Scroll", id="lab.down", show=False, priority=True,
                tooltip="Scroll the summary down"),
    ]
    DEFAULT_CSS = """
    LabScreen #lab-body { height: 1fr; }
    LabScreen #lab-list { width: 20; height: 1fr; border: none; padding: 0; }
    LabScreen #lab-right { width: 1fr; height: 1fr; padding: 0 1; }
    LabScreen #lab-explain { height: auto; max-height: 4; color: $text-muted; }
    LabScreen #lab-status { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    LabScreen #lab-chart { height: 1fr; min-height: 8; }
    LabScreen #lab-text { height: 1fr; min-height: 8; }
    LabScreen #lab-key { height: auto; max-height: 2; }
    LabScreen #lab-summary { height: auto; max-height: 6; scrollbar-size-vertical: 1; }
    LabScreen .lab-hidden { display: none; }
    """

    # Per-experiment settings overrides (tests make the runs tiny).
    overrides: dict[str, dict] = {}

    def __init__(self) -> None:
        super().__init__()
        self.names: tuple[str, ...] = tuple(VIEWS)
        self.explanations: dict[str, tuple[str, str]] = {}
        self.quick = False
        self.running: str | None = None
        self.progress: tuple[float, str] = (0.0, "")
        self.view_index: dict[str, int] = {}
        self._stop: threading.Event | None = None
        self._run_id = 0

    @property
    def results(self) -> dict:
        return self.app.session.lab_results

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar("lab")
        with Horizontal(id="lab-body"):
            yield OptionList(*[Option(n, id=n) for n in self.names], id="lab-list")
            with Vertical(id="lab-right"):
                yield Static("", id="lab-status")
                yield Static(LOADING_TEXT, id="lab-explain")
                yield Chart(self._draw, fresh_figure=True, id="lab-chart")
                yield Static("", id="lab-key")
                with VerticalScroll(id="lab-text", classes="lab-hidden"):
                    yield Static("", id="lab-text-body")
                with VerticalScroll(id="lab-summary"):
                    yield Static("", id="lab-summary-body")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "engine_ready", self._engine_ready, init=False)
        self.query_one(OptionList).highlighted = 0
        self.query_one(OptionList).focus()
        self._engine_ready()

    def on_unmount(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def _engine_ready(self, _value=None) -> None:
        if getattr(self.app, "engine_ready", False) and not self.explanations:
            try:
                reg = registry()
            except Exception as exc:  # the engine's experiments module failed to import
                self.query_one("#lab-explain", Static).update(
                    Text(f"the experiments are not available: {type(exc).__name__}: {exc}", style="red"))
                return
            self.explanations = {n: e.explanation for n, e in reg.items()}
            if tuple(reg) != self.names:
                self.names = tuple(reg)
                ol = self.query_one(OptionList)
                ol.clear_options()
                ol.add_options([Option(n, id=n) for n in self.names])
                ol.highlighted = 0
        self._show_selected()

    # ---------------------------------------------------------------- selection
    @property
    def selected(self) -> str:
        ol = self.query_one(OptionList)
        i = ol.highlighted if ol.highlighted is not None else 0
        return self.names[min(i, len(self.names) - 1)]

    def select(self, name: str) -> None:
        if name in self.names:
            self.query_one(OptionList).highlighted = self.names.index(name)
            self._show_selected()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_selected()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_run()

    def _views(self, name: str) -> tuple[str, ...]:
        return VIEWS.get(name, ("result",))

    def _view(self, name: str) -> str:
        views = self._views(name)
        return views[self.view_index.get(name, 0) % len(views)]

    def _show_selected(self) -> None:
        name = self.selected
        explain = Text()
        lines = self.explanations.get(name)
        if lines:
            explain.append(lines[0] + "\n" + lines[1])
        elif not getattr(self.app, "engine_ready", False):
            explain.append(LOADING_TEXT)
        self.query_one("#lab-explain", Static).update(explain)
        self._show_status()
        self._show_result()

    def _show_status(self) -> None:
        self.refresh_bindings()
        t = Text(no_wrap=True, overflow="ellipsis")
        name = self.selected
        t.append(name, style="bold")
        t.append(f" · {'quick' if self.quick else 'default'} (q) · ", style="dim")
        if self.running is not None:
            frac, msg = self.progress
            t.append(f"{self.running} ", style="bold yellow")
            t.append(bar(frac, 16), style="yellow")
            t.append(f" {frac * 100:3.0f}% ", style="bold")
            t.append(msg, style="dim")
            if self.running != name:
                t.append(" (escape stops it)", style="dim")
        elif name in self.results:
            r = self.results[name]
            views = self._views(name)
            t.append(f"{r.seconds:.1f} s{' stopped' if r.stopped else ''} · ", style="dim")
            for v in views:
                t.append(v, style="bold reverse" if v == self._view(name) else "dim")
                t.append(" ")
            if len(views) > 1:
                t.append("(v)", style="dim")
        else:
            t.append("enter runs it", style="bold")
        self.query_one("#lab-status", Static).update(t)

    def _show_result(self) -> None:
        name = self.selected
        result = self.results.get(name)
        view = self._view(name)
        is_text = (name, view) in TEXT_VIEWS
        chart = self.query_one("#lab-chart", Chart)
        text = self.query_one("#lab-text")
        chart.set_class(is_text and result is not None, "lab-hidden")
        text.set_class(not (is_text and result is not None), "lab-hidden")
        if result is not None and is_text:
            width = max(20, self.query_one("#lab-right").size.width - 2)
            try:
                body = text_view(name, view, result, width)
            except Exception as exc:
                body = Text(f"(cannot draw: {type(exc).__name__}: {exc})", style="red")
            self.query_one("#lab-text-body", Static).update(body)
        chart.refresh()
        key = Text()
        if result is not None and not is_text:
            try:
                for label, colour in series_key(name, view, result):
                    key.append("━━ " if name not in ("zog", "parity") else "● ", style=_hex(colour))
                    key.append(f"{label}  ")
            except Exception:
                pass
        self.query_one("#lab-key", Static).update(key)
        self.query_one("#lab-key").display = bool(key.plain)
        summary = self.query_one("#lab-summary-body", Static)
        if result is None:
            summary.update("")
        else:
            try:
                summary.update(summary_text(result))
            except Exception as exc:
                summary.update(Text(f"(no summary: {type(exc).__name__}: {exc})", style="red"))

    def _draw(self, plt, width: int, height: int) -> None:
        name = self.selected
        result = self.results.get(name)
        if result is None:
            plt.title("no result yet: enter runs the experiment" if self.running is None
                      else "running…")
            return
        draw_result(plt, name, self._view(name), result, width, height)

    # ---------------------------------------------------------------- running
    def action_run(self) -> None:
        self.run_named(self.selected)

    def run_named(self, name: str) -> None:
        """Run an experiment by name (the palette calls this too)."""
        if not getattr(self.app, "engine_ready", False):
            self.notify("the engine is still loading; try again in a moment", severity="warning")
            return
        if self.running is not None:
            self.notify(f"{self.running} is running: escape stops it", severity="warning", timeout=3)
            return
        self.select(name)
        self._run_id += 1
        self._stop = threading.Event()
        self.running = name
        self.progress = (0.0, "starting…")
        self._show_status()
        self._run_worker(name, self.quick, dict(self.overrides.get(name, {})), self._stop, self._run_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lab-run")
    def _run_worker(self, name: str, quick: bool, overrides: dict, stop: threading.Event, run_id: int) -> None:
        exp = registry()[name]
        settings = exp.settings(overrides, quick=quick)

        def progress(fraction: float, message: str) -> None:
            self.post_message(LabProgress(run_id, float(fraction), str(message)))

        result = exp.run(settings, stop=stop, progress=progress)
        self.post_message(LabDone(run_id, name, result))

    def on_lab_progress(self, message: LabProgress) -> None:
        if message.run_id == self._run_id and self.running is not None:
            self.progress = (message.fraction, message.text)
            self._show_status()

    def on_lab_done(self, message: LabDone) -> None:
        if message.run_id != self._run_id:
            return
        self.running = None
        self._stop = None
        self.results[message.name] = message.result
        if message.result.stopped:
            self.notify(f"{message.name} stopped: the partial result is drawn", timeout=3)
        if self.selected == message.name:
            self._show_selected()
        else:
            self._show_status()

    def action_cancel(self) -> None:
        if self.running is None or self._stop is None:
            return
        self._stop.set()
        self.progress = (self.progress[0], "stopping…")
        self._show_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.running is not None
        if action == "cycle_view":
            return len(self._views(self.selected)) > 1 and self.selected in self.results
        return True

    def action_cycle_view(self) -> None:
        name = self.selected
        self.view_index[name] = self.view_index.get(name, 0) + 1
        self._show_status()
        self._show_result()

    def action_toggle_quick(self) -> None:
        self.quick = not self.quick
        self._show_selected()

    def action_scroll_summary(self, direction: int) -> None:
        scroll = self.query_one("#lab-summary", VerticalScroll)
        scroll.scroll_relative(y=direction * 3, animate=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if report_worker_error(self, event) and event.worker.group == "lab-run":
            self.running = None
            self._stop = None
            self._show_status()
