"""Metrics the app has no column for (`RunWriter.log(step, accuracy=...)`): kept under their
names, carried by the watcher, charted by name on the training screen (m), bounded whatever
the file holds."""

from __future__ import annotations

import json
import math

import numpy as np

from rnn_tui import RunWriter
from rnn_tui.engine.corpus import TOY_ALPHABET
from rnn_tui.runs import RowsRead, RunWatch, Watcher
from rnn_tui.runs.metrics import record_named
from rnn_tui.runs.named import MAX_NAME_CHARS, MAX_NAMED, NameTable, clean_name
from rnn_tui.screens.training import TrainingScreen
from rnn_tui.screens.training.chart import ChartView, metric_names

from test_watch import make_app, metric_line, run_of
from pilot_helpers import tap, wait_for


def write_steps(writer: RunWriter, steps) -> None:
    for step in steps:
        writer.log(step, loss=2.0 * math.exp(-step / 50) + 0.5, accuracy=1 - math.exp(-step / 30),
                   perplexity=math.exp(2.0 * math.exp(-step / 50) + 0.5))


def test_a_record_keeps_every_other_number_by_name():
    names = NameTable()
    rec = json.loads(metric_line(5))  # rnn-tui's own line: lr is its only named series
    assert record_named(rec, names) == [("lr", 3e-3)]
    rec = {"step": 1, "loss": 1.0, "bits": 1.4, "ppl": 2.7, "accuracy": 0.5, "flag": True, "note": "x",
           "none": None, "big": 10 ** 400, "inf": 1e999, "my_metric": 7}
    assert record_named(rec, names) == [("accuracy", 0.5), ("my_metric", 7.0)]
    assert names.names == ["lr", "accuracy", "my_metric"]


def test_names_are_bounded_and_cleaned():
    names = NameTable()
    rec = {f"m{i}": float(i) for i in range(5000)}
    got = record_named(rec, names)
    assert len(got) == MAX_NAMED and names.names == [f"m{i}" for i in range(MAX_NAMED)]
    assert names.left_out == 5000 - MAX_NAMED
    assert record_named({"m0": 1.0, "m4999": 2.0}, names) == [("m0", 1.0)]  # the same 32, later too
    assert clean_name("acc\x1b[31m\n") == "acc[31m" and clean_name(12) == "" and clean_name("\x00") == ""
    long = clean_name("x" * 10_000)
    assert len(long) == MAX_NAME_CHARS and long.endswith("…")


def test_the_watcher_carries_named_points(tmp_path):
    run_dir = tmp_path / "mine"
    events = []
    watcher = Watcher([run_dir], report=events.append)
    with RunWriter(run_dir, vocab=list(TOY_ALPHABET)) as writer:
        write_steps(writer, range(1, 11))
        watcher.poll()
        read = [e for e in events if isinstance(e, RowsRead)]
        assert len(read) == 1 and set(read[0].named) == {"accuracy", "perplexity"}
        acc = read[0].named["accuracy"]
        assert acc.shape == (10, 4) and not acc.flags.writeable
        assert acc[:, 0].tolist() == list(map(float, range(1, 11)))  # step
        np.testing.assert_allclose(acc[:, 3], [1 - math.exp(-s / 30) for s in range(1, 11)])
        np.testing.assert_array_equal(acc[:, 2], read[0].rows[:, 6])  # dated as their lines
        write_steps(writer, range(11, 16))
        watcher.poll()
    run = watcher.runs[0]
    gen, rows, named, _ = run.take_all()
    assert len(rows) == 15 and named["accuracy"][:, 0].tolist() == list(map(float, range(1, 16)))
    assert run.take_all()[2] == {}  # taken once


def test_a_rewrite_starts_the_named_series_over(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0, "acc": s / 10}) + "\n" for s in range(1, 6)))
    run = RunWatch(tmp_path)
    run.poll_rows()
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0, "acc": 9.0}) + "\n" for s in range(1, 3)))
    rows, restarted, named, _ = run.poll_rows()
    gen, _, taken, _ = run.take_all()
    assert restarted and gen == 1 and taken["acc"][:, 3].tolist() == [9.0, 9.0]


def test_metric_names_and_the_view():
    class R:
        def __init__(self, *names):
            self.named = dict.fromkeys(names)

    runs = [R("lr", "accuracy"), R("accuracy", "val/acc")]
    assert metric_names(runs) == ["lr", "accuracy", "val/acc"]
    assert metric_names(runs, "ACC") == ["accuracy", "val/acc"]
    assert metric_names(runs, "nothing") == ["lr", "accuracy", "val/acc"]  # no tag has it: every one
    view = ChartView()
    assert not view.change("metric+", []) and view.chart == "loss"
    assert view.change("metric+", ["lr", "accuracy"]) and (view.chart, view.metric) == ("metric", "lr")
    view.change("metric+", ["lr", "accuracy"])
    assert view.metric == "accuracy" and "metric accuracy" in view.describe().plain
    view.change("metric-", ["lr", "accuracy"])
    assert view.metric == "lr"
    view.change("chart")
    assert view.chart == "loss" and "metric" not in view.describe().plain  # c: back to the loss


async def test_a_runwriter_metric_is_charted_by_its_name(tmp_path):
    run_dir = tmp_path / "mine"
    app = make_app([run_dir])
    with RunWriter(run_dir, vocab=list(TOY_ALPHABET)) as writer:
        write_steps(writer, range(1, 21))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            await wait_for(pilot, lambda: any(len(r.cols) == 20 for r in screen.runs), what="20 lines")
            run = run_of(screen, "mine")
            assert list(run.named) == ["accuracy", "perplexity"] and len(run.named["accuracy"]) == 20
            await tap(pilot, "m")
            assert screen.view.chart == "metric" and screen.view.metric == "accuracy"
            assert "metric accuracy" in screen.query_one("#tr-view").render().plain
            assert "accuracy 0.4866" in screen.status_text().plain  # 1 - exp(-20/30)
            chart = screen.query_one("#tr-chart-loss")
            await wait_for(pilot, lambda: chart.drawn is not None and chart.drawn.points > 0, what="the chart")
            assert chart.drawn.x_to == 20.0
            write_steps(writer, range(21, 41))  # the script trains on: the chart follows
            await wait_for(pilot, lambda: chart.drawn.x_to == 40.0, what="the longer curve")
            await tap(pilot, "m")
            assert screen.view.metric == "perplexity"
            await tap(pilot, "M", "y", "w")  # back to accuracy; log y and training time, as for loss
            assert screen.view.metric == "accuracy" and screen.view.log_y and screen.view.xaxis == "time"
            await wait_for(pilot, lambda: chart.drawn.points > 0 and chart.drawn.x_to < 40, what="x by time")
            await tap(pilot, "c")
            assert screen.view.chart == "loss"


async def test_m_without_named_metrics_says_so(tmp_path):
    run_dir = tmp_path / "plain"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(5)))
    app = make_app([run_dir])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        screen = app.screen
        await wait_for(pilot, lambda: any(len(r.cols) == 5 for r in screen.runs), what="the lines")
        await tap(pilot, "m")
        assert screen.view.chart != "metric"
        assert any("no named metrics" in str(n.message) for n in app._notifications)
