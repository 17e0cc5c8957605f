"""Tests for rnn_tui.render (and the chart widget): render to a recording console and read the text back."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from rnn_tui.render import (
    NAN_RGB,
    ConfidenceBars,
    Heatmap,
    ProbBars,
    TriangleHeatmap,
    color,
    diverging,
    downsample,
    ema,
    heat_row,
    legend,
    log_color,
    log_safe,
    log_ticks,
    plot_width_points,
    rgb,
    sequential,
    token_label,
    unit_order,
)


def render(renderable, width: int = 80) -> tuple[str, str]:
    """(plain text, ANSI output) of a renderable on a truecolor console."""
    console = Console(width=width, record=True, color_system="truecolor", force_terminal=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text(), console.file.getvalue()


def bg(triplet) -> str:
    return "48;2;{};{};{}".format(*triplet)


def triplet(c) -> tuple[int, int, int]:
    t = c.get_truecolor()
    return (t.red, t.green, t.blue)


# --- colours -------------------------------------------------------------------------------


def test_diverging_endpoints_and_clamp():
    r, g, b = triplet(diverging(-1))
    assert b > r + 100 and b > g
    r, g, b = triplet(diverging(1))
    assert r > b + 100 and r > g
    assert triplet(diverging(-7)) == triplet(diverging(-1))
    assert triplet(diverging(3.5)) == triplet(diverging(1))
    assert sum(triplet(diverging(0))) < 120  # near-black, not white
    assert triplet(diverging(float("nan"))) == NAN_RGB != triplet(diverging(0))


def test_sequential_and_log():
    assert sum(triplet(sequential(0))) < 120
    r, g, b = triplet(sequential(1))
    assert r > 200 and g > 200 and b < 100  # yellow
    assert triplet(sequential(2)) == triplet(sequential(1))
    assert triplet(log_color(1e-6, 1e-6, 1)) == triplet(sequential(0))
    assert triplet(log_color(1e-3, 1e-6, 1)) == triplet(sequential(0.5))
    assert triplet(log_color(0.0, 1e-6, 1)) == triplet(sequential(0))  # underflow = darkest
    assert triplet(color(float("nan"), "log", 1e-6, 1)) == NAN_RGB


def test_rgb_vectorised_and_vmin_vmax():
    out = rgb(np.array([[-2.0, 0.0], [np.nan, 4.0]]), "diverging", -2, 2)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == triplet(diverging(-1))
    assert tuple(out[1, 0]) == NAN_RGB
    with pytest.raises(ValueError):
        rgb([1.0], "rainbow")


@pytest.mark.parametrize("kind,left,mid,right", [("diverging", "-1", "0", "+1"), ("sequential", "0", "0.5", "1")])
def test_legend_labels_and_width(kind, left, mid, right):
    text = legend(kind, 30)
    assert cell_len(text.plain) == 30
    assert text.plain.startswith(left + " ") and text.plain.endswith(" " + right)
    assert f" {mid} " in text.plain[len(left) :]
    assert legend("log", 30, 1e-6, 100).plain.startswith("1e-06")


# --- heatmap -------------------------------------------------------------------------------


def test_token_label():
    assert token_label(" ") == "␣"
    assert token_label("\n") == "⏎"
    assert token_label("hello", 2) == "he"
    assert token_label("hello", 4) == "hel…"
    assert token_label("a\x07b") == "a·b"


def make_map(**kw):
    rng = np.random.default_rng(0)
    values = np.tanh(rng.normal(size=(256, 40)))
    tokens = list("the cat sat on the mat.\nA dog ran after it")[:40]
    return Heatmap(values, col_labels=tokens, **kw), tokens


def test_heatmap_scroll_indicator_and_row_labels():
    hm, _ = make_map(row_offset=16, max_rows=24)
    text, _ = render(hm)
    lines = text.splitlines()
    assert "units 16-39 of 256" in lines[-1]
    labels = [ln.split()[0] for ln in lines[1:-1]]  # row lines begin with the unit index
    assert labels[0] == "16" and labels[-1] == "39" and len(labels) == 24
    order = np.arange(256)[::-1]  # sorted: labels jump about, so the footer counts rows
    text, _ = render(make_map(order=order, row_offset=2, max_rows=5)[0])
    assert "rows 3-7 of 256 units, sorted" in text.splitlines()[-1]
    assert [ln.split()[0] for ln in text.splitlines()[1:-1]] == ["253", "252", "251", "250", "249"]


def test_heatmap_column_labels_and_marked_column():
    hm, tokens = make_map(highlight_col=4, max_rows=3)
    text, ansi = render(hm)
    marker, labels, first_row = text.splitlines()[:3]
    col = marker.index("▼")
    lead = 4  # "255" is 3 wide, plus a space
    assert col == lead + 4 * 2
    assert labels[lead : lead + 8] == "t h e ␣ "  # cell width 2, space shown as ␣
    assert labels[col] == tokens[4] == "c"
    assert first_row[col : col + 2] == "▏▕"  # bright border around the current step
    assert "⏎" in labels
    assert "255;215;95" in ansi  # the marker colour is used


def test_heatmap_crops_columns_around_highlight():
    hm, tokens = make_map(highlight_col=35, max_rows=2)
    text, _ = render(hm, width=30)
    lines = text.splitlines()
    assert all(cell_len(ln) <= 30 for ln in lines)
    assert "▼" in lines[0]
    assert "units 0-1 of 256" in lines[-2] and "steps 28-40 of 40" in lines[-1]


def test_heatmap_nan_grey_and_order():
    values = np.array([[0.0, np.nan], [1.0, -1.0]])
    text, ansi = render(Heatmap(values, order=[1, 0]))
    assert bg(NAN_RGB) in ansi
    rows = text.splitlines()[:2]
    assert rows[0].split()[0] == "1" and rows[1].split()[0] == "0"  # order keeps real indices
    with pytest.raises(ValueError):
        Heatmap(np.zeros(3))


def test_triangle_heatmap_blank_upper():
    T = 6
    norms = np.full((T, T), np.nan)
    for t in range(T):
        for k in range(t + 1):
            norms[t, k] = 0.3 ** (t - k)
    text, ansi = render(TriangleHeatmap(norms, list("hello ")))
    ansi_rows = [ln for ln in ansi.splitlines() if "48;2" in ln]
    assert [ln.count("48;2") for ln in ansi_rows] == [1, 2, 3, 4, 5, 6]  # NaN cells uncoloured
    assert bg(NAN_RGB) not in ansi
    assert "0 h" in text and "5 ␣" in text and "t 0-5 of 6" in text


def test_heat_row_folds():
    text = heat_row(np.linspace(-1, 1, 50), "f", width=20)
    lines = text.plain.split("\n")
    assert len(lines) == 3 and lines[0].startswith("f ")
    assert all(cell_len(ln) <= 20 for ln in lines)
    assert len(heat_row(np.zeros(50), "gate").plain.split("\n")) == 1
    _, ansi = render(heat_row([-1.0, np.nan, 1.0], "c"))
    assert bg(NAN_RGB) in ansi


def test_unit_order_modes():
    h = np.array([[0, 3, -2, 5], [0, -3, 2, 0.5], [0, 3, -3, 0.1]], dtype=float)
    assert unit_order(h, "index").tolist() == [0, 1, 2, 3]
    assert unit_order(h, "activation").tolist() == [1, 2, 3, 0]  # |last step|, tie keeps index order
    assert unit_order(h, "activation", step=0).tolist() == [3, 1, 2, 0]
    assert unit_order(h, "variance").tolist() == [1, 3, 2, 0]
    h[1, 1] = np.nan
    assert unit_order(h, "activation", step=1)[-1] == 1  # NaN goes last
    with pytest.raises(ValueError):
        unit_order(h, "random")


# --- bars ----------------------------------------------------------------------------------

ITEMS = [(" ", 0.42), ("e", 0.2), ("\n", 0.1), ("the", 0.05), ("x", 0.0004)]


def test_probbars_marked_in_topk():
    text, ansi = render(ProbBars(ITEMS, width=60, marked="e"))
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("␣") and "42.0%" in lines[0]
    assert lines[2].startswith("⏎") and lines[4].rstrip().endswith("<0.1%")
    assert "◀ actual" in lines[1] and "20.0%" in lines[1]
    assert sum("actual" in ln for ln in lines) == 1
    assert lines[0].count("█") > lines[1].count("█") > lines[3].count("█")
    assert all(cell_len(ln) <= 60 for ln in lines)
    assert "38;2;255;175;0" in ansi  # the actual token has its own colour


def test_probbars_actual_outside_topk():
    text, _ = render(ProbBars(ITEMS[:3], width=60, marked=("q", 0.0012)))
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[-1].startswith("q") and "0.1%" in lines[-1]
    assert f"{-math.log(0.0012):.2f} nats" in lines[-1]


def test_probbars_from_trace():
    trace = SimpleNamespace(
        tokens=("a", "b", "c"),
        topk_ids=np.array([[1, 2], [0, 2], [0, 1]]),
        topk_tokens=(("b", "c"), ("a", "c"), ("a", "b")),
        topk_probs=np.array([[0.7, 0.2], [0.5, 0.3], [0.6, 0.3]]),
        next_ids=np.array([1, 2, -1]),
        next_prob=np.array([0.7, 0.3, np.nan]),
        next_loss=np.array([0.36, 1.2, np.nan]),
    )
    assert "◀ actual" in render(ProbBars.from_trace(trace, 0, width=40))[0].splitlines()[0]
    assert "actual" not in render(ProbBars.from_trace(trace, 2, width=40))[0]


def test_confidence_bars_colours():
    text, ansi = render(ConfidenceBars([("rnn", 0.31, "wrong"), ("lstm", 0.82), ("gru", 0.6)], width=50))
    lines = text.splitlines()
    assert len(lines) == 3 and "31.0%" in lines[0] and "82.0%" in lines[1] and "wrong" in lines[0]
    green, red = "38;2;95;215;95", "38;2;255;95;95"
    row_rnn, row_lstm = [ln for ln in ansi.splitlines() if "%" in ln][:2]
    assert red in row_rnn and green not in row_rnn
    assert green in row_lstm and red not in row_lstm


# --- plots ---------------------------------------------------------------------------------


def test_downsample_keeps_extremes_and_order():
    rng = np.random.default_rng(1)
    x = np.arange(10_000, dtype=float)
    y = np.cumsum(rng.normal(size=x.size))
    y[::97] = np.nan
    xs, ys = downsample(x, y, 100)
    assert xs.size <= 100 and xs.size == ys.size
    assert np.all(np.diff(xs) > 0)
    assert ys.max() == np.nanmax(y) and ys.min() == np.nanmin(y)
    assert xs[0] == 1 and xs[-1] == x[-1]  # x[0] is NaN-dropped; the ends survive
    assert not np.isnan(ys).any()


def test_downsample_edge_cases():
    x, y = np.arange(5.0), np.array([3.0, 1, 4, 1, 5])
    xs, ys = downsample(x, y, 10)
    assert np.array_equal(xs, x) and np.array_equal(ys, y)
    assert downsample([], [], 10)[0].size == 0
    xs, ys = downsample([3.0, 1.0, 2.0], [30.0, 10.0, 20.0], 10)
    assert xs.tolist() == [1, 2, 3] and ys.tolist() == [10, 20, 30]
    for n in (1, 2, 3):
        assert downsample(np.arange(50.0), np.arange(50.0), n)[0].size <= n
    with pytest.raises(ValueError):
        downsample([1.0], [1.0, 2.0], 5)


def test_downsample_large_series():
    x = np.arange(100_000, dtype=float)
    xs, ys = downsample(x, np.sin(x / 500.0), 200)
    assert 100 <= xs.size <= 200


def _ema_reference(values, w):
    out, last, n = [], 0.0, 0
    for v in values:
        if not np.isfinite(v):
            out.append(np.nan)
            continue
        last, n = last * w + (1 - w) * v, n + 1
        out.append(last / (1 - w**n))
    return np.array(out)


def test_ema():
    y = np.random.default_rng(2).normal(size=3000)
    assert np.array_equal(ema(y, 0.0), y)
    assert np.allclose(ema(np.full(5000, 2.5), 0.999), 2.5)
    y[[3, 100]] = [np.nan, np.inf]
    for w in (0.6, 0.99, 0.999):
        assert np.allclose(ema(y, w), _ema_reference(y, w), equal_nan=True)
    out = ema([1.0, np.nan, 1.0, 1.0], 0.9)
    assert np.isnan(out[1]) and np.allclose(out[[0, 2, 3]], 1.0)
    with pytest.raises(ValueError):
        ema(y, 1.0)


def test_log_safe_and_width_points():
    src = np.array([-1.0, 0.0, 2.0])
    out = log_safe(src)
    assert np.isnan(out[:2]).all() and out[2] == 2.0 and src[0] == -1.0
    assert plot_width_points(80) == 160
    assert plot_width_points(0) > 0


def test_log_ticks():
    pos, labels = log_ticks(math.log10(0.01), math.log10(5))
    assert labels == ["0.01", "0.1", "1"] and pos == [-2.0, -1.0, 0.0]
    assert len(log_ticks(-30, 5)[0]) <= 6


async def test_chart_log_scale_rerenders():
    from textual.app import App

    from rnn_tui.widgets.chart import Chart

    x = np.arange(501, dtype=float)
    y = np.append(ema(3.0 * np.exp(-x[:-1] / 100), 0.5), 0.0)  # the last value cannot sit on a log axis

    def draw(plt, width, height):
        xs, ys = downsample(x, log_safe(y), plot_width_points(width))
        plt.yscale("log")
        plt.plot(xs.tolist(), ys.tolist(), label="train", marker="braille")
        return xs.size

    class PlotApp(App):
        def compose(self):
            yield Chart(draw)

    app = PlotApp()
    async with app.run_test(size=(60, 16)) as pilot:
        plot = app.query_one(Chart)
        await pilot.pause()
        first = plot.render().plain
        # plotext's own log scale took log(log(y)) (or crashed) on a second build of the same data
        second = plot.render().plain
        assert "could not be drawn" not in second and first == second
        assert plot.drawn > 0 and "0.1" in second


def test_whole_number_axes_get_whole_number_ticks():
    from rnn_tui.render.ticks import integer_ticks

    class Plot:
        def xticks(self, ticks, labels):
            self.ticks, self.labels = ticks, labels

    plt = Plot()
    integer_ticks(plt, 1, 40, 60)
    assert plt.labels and all(label.isdigit() for label in plt.labels)  # not "10.8 20.5 30.2"
    assert plt.ticks == [float(x) for x in plt.labels]


def test_the_lit_word_category_is_named_in_words():
    from rnn_tui.engine.corpus import grammar_categories
    from rnn_tui.screens.stepper import category_words, token_strip

    assert category_words("NOUN_ANIMAL") == "noun (animal)"
    assert category_words("FUNCTION") == "function word"
    assert category_words("VERB_INTRAN") == "verb (intransitive)"
    tokens = list("the cat sat")
    strip = token_strip(tokens, 5, 60, "char", grammar_categories()).plain  # the "a" of "cat"
    assert "cat: noun (animal)" in strip.splitlines()[1]


def test_heatmap_columns_are_wide_enough_for_word_and_piece_labels():
    from rnn_tui.screens.stepper import cell_width_for

    assert cell_width_for(60, 20, "char") == 2 and cell_width_for(60, 100, "char") == 1
    # Words and subword pieces: at least 3 cells (the window then follows the step), at most 6.
    assert cell_width_for(60, 40, "bpe") == 3 and cell_width_for(60, 40, "word") == 3
    assert cell_width_for(60, 14, "bpe") == 4 and cell_width_for(200, 10, "word") == 6
    assert cell_width_for(2, 10, "bpe") == 2  # never wider than the room there is


def test_a_folded_gate_row_has_lines_of_equal_length():
    from rnn_tui.screens.stepper import dense_heat_row

    values = np.linspace(0, 1, 96)
    text = dense_heat_row(values, "r", 50, "sequential", 0.0, 1.0, 1)  # room for 48 cells: 96 units
    lines = text.plain.split("\n")
    assert [line.count("▌") for line in lines] == [48]
    text = dense_heat_row(values, "r", 47, "sequential", 0.0, 1.0, 1)  # 45 cells (90 units): fold
    assert [line.count("▌") for line in text.plain.split("\n")] == [24, 24]
    text = dense_heat_row(np.linspace(0, 1, 95), "r", 47, "sequential", 0.0, 1.0, 1)
    counts = [line.count("▌") for line in text.plain.split("\n")]
    assert sum(counts) == 48 and max(counts) - min(counts) <= 1  # every unit kept
