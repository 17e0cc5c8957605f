"""`rnn-tui watch LOGDIR` on TensorBoard event files written by any tool: the logs here are
written by `torch.utils.tensorboard.SummaryWriter` (and a TF2-style tensor scalar by
tensorboard's own summary proto), read with tensorboard's own loader, followed as they grow."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnn_tui.runs import RowsRead, Watcher, expand_run_dirs, runs_in
from rnn_tui.runs.layout import event_files, is_tensorboard_run
from rnn_tui.runs.named import MAX_NAMED
from rnn_tui.runs.tblog import EventLog, column_for_tag, series_name
from rnn_tui.screens.training import TrainingScreen

from test_watch import make_app, metric_line, run_of
from pilot_helpers import tap, wait_for

pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def log_steps(writer: SummaryWriter, steps, tau: float = 50.0) -> None:
    for s in steps:
        writer.add_scalar("Loss/train", 0.5 + 2.5 * math.exp(-s / tau), s)
        writer.add_scalar("train/acc", 1 - math.exp(-s / tau), s)
        writer.add_scalar("learning_rate", 1e-3, s)
        if s % 10 == 0:
            writer.add_scalar("Loss/val", 0.6 + 2.5 * math.exp(-s / tau), s)
    writer.flush()


def test_tags_map_onto_the_columns():
    assert [column_for_tag(t) for t in ("loss", "train/loss", "Loss/train", "train_loss", "epoch_loss")] == ["loss"] * 5
    assert [column_for_tag(t) for t in ("val_loss", "loss/val", "val/loss", "Loss/Validation", "eval/loss")] == ["val"] * 5
    assert column_for_tag("grad_norm") == "grad" and column_for_tag("epoch") == "epoch"
    assert column_for_tag("train/acc") is None and column_for_tag("loss_scale") is None
    assert [series_name(t) for t in ("lr", "learning_rate", "lr-Adam", "train/learning_rate")] == ["lr"] * 4
    assert series_name("train/acc") == "train/acc" and series_name("lr-Adam/pg1/momentum") == "lr-Adam/pg1/momentum"


def test_a_log_is_read_as_it_grows(tmp_path):
    run_dir = tmp_path / "run1"
    writer = SummaryWriter(str(run_dir))
    try:
        log_steps(writer, range(20))
        log = EventLog(run_dir)
        read = log.poll()
        rows = read.rows + log.poll().rows  # the last step's row comes once the writer is quiet
        assert [r[0] for r in rows] == list(map(float, range(20)))
        assert rows[3][2] == pytest.approx(0.5 + 2.5 * math.exp(-3 / 50))  # Loss/train -> loss
        assert rows[10][7] == pytest.approx(0.6 + 2.5 * math.exp(-10 / 50))  # Loss/val -> val, same row
        assert math.isnan(rows[3][7]) and rows[3][6] > 1e9 and rows[3][5] >= 0  # wall, time since start
        named = read.named.arrays()
        assert list(named) == ["train/acc", "lr"] and named["lr"][:, 3].tolist() == pytest.approx([1e-3] * 20)
        assert log.poll().events == 0  # nothing new: nothing read
        log_steps(writer, range(20, 30))
        more = log.poll()
        assert more.named.arrays()["train/acc"][:, 0].tolist() == list(map(float, range(20, 30)))  # only the new
        # A budget: a long log comes in over several polls, each file from where it stopped.
        log_steps(writer, range(30, 130))
        got = []
        while True:
            part = log.poll(budget=50)
            assert part.events <= 50
            points = part.named.arrays().get("train/acc")
            got += points[:, 0].tolist() if points is not None else []
            if not part.more:
                break
        assert got == list(map(float, range(30, 130)))
    finally:
        writer.close()


def test_tensor_scalars_as_tf2_and_keras_write_them(tmp_path):
    from tensorboard.plugins.scalar import summary_v2

    writer = SummaryWriter(str(tmp_path))
    for step in range(3):
        pb = summary_v2.scalar_pb("epoch_accuracy", 0.5 + step / 10)
        if step:  # TF2 names the plugin on a tag's first value only
            pb.value[0].ClearField("metadata")
        writer._get_file_writer().add_summary(pb, step)
    writer.add_histogram("weights", np.array([1.0, 2.0, 3.0]), 0)  # not a scalar: left out
    writer.add_text("notes", "hello", 0)
    writer.close()
    read = EventLog(tmp_path).poll()
    named = read.named.arrays()
    assert list(named) == ["epoch_accuracy"]
    assert named["epoch_accuracy"][:, 3].tolist() == pytest.approx([0.5, 0.6, 0.7])


def test_a_huge_number_of_tags_stays_bounded(tmp_path):
    writer = SummaryWriter(str(tmp_path / "wide"))
    for step in range(3):
        for i in range(3000):
            writer.add_scalar(f"layer{i}/mean", float(i), step)
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()
    watcher = Watcher([tmp_path / "wide"])
    for _ in range(5):
        watcher.poll()
    run = watcher.runs[0]
    assert run.kind == "tensorboard" and len(run.names.names) == MAX_NAMED
    assert run.names.left_out == 3000 - MAX_NAMED
    gen, rows, named, _ = run.take_all()
    assert rows[:, 2].tolist() == [1.0, 0.5, pytest.approx(1 / 3)] and len(named) == MAX_NAMED
    assert all(len(points) == 3 for points in named.values())
    assert len(run._tb._scalar_tags) == 0  # simple values: no tag kept to tell them apart


def test_runs_are_the_directories_with_event_files(tmp_path):
    for d in ("logs/run1", "logs/group/run2", "logs/version_0/sub"):
        SummaryWriter(str(tmp_path / d)).close()
    own = tmp_path / "logs" / "mine"  # an rnn-tui run: its tb/ is its own, not another run
    (own / "tb").mkdir(parents=True)
    (own / "metrics.jsonl").write_text(metric_line(1))
    SummaryWriter(str(own / "tb")).close()
    logs = tmp_path / "logs"
    assert [p.relative_to(logs).as_posix() for p in runs_in(logs)] == ["group/run2", "mine", "run1",
                                                                      "version_0/sub"]
    assert is_tensorboard_run(logs / "run1") and not is_tensorboard_run(own) and event_files(logs / "run1")
    dirs, roots, _ = expand_run_dirs([str(logs / "run1")])  # a log directory given itself: a run,
    assert dirs == [logs / "run1"] and roots == [logs / "run1"]  # and runs below it join (add_scalars)
    watcher = Watcher(dirs, roots=roots)
    for _ in range(5):
        watcher.poll()
    assert [r.path for r in watcher.runs] == [logs / "run1"]


def test_without_tensorboard_watch_says_how_to_install(tmp_path, monkeypatch, capsys):
    from rnn_tui import app as app_mod
    from rnn_tui.cli import main
    from rnn_tui.runs import tblog

    SummaryWriter(str(tmp_path / "logs" / "run1")).close()
    calls = []
    monkeypatch.setattr(app_mod, "run_app", lambda settings: calls.append(settings))
    available = tblog.tensorboard_available
    monkeypatch.setattr(tblog, "tensorboard_available", lambda: False)
    assert main(["watch", str(tmp_path / "logs")]) == 2 and not calls
    err = capsys.readouterr().err.strip()
    assert 'pip install "rnn-tui[tensorboard]"' in err and len(err.splitlines()) == 1
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.jsonl").write_text(metric_line(1))
    assert main(["watch", str(tmp_path / "logs"), str(mine)]) == 0  # the rnn-tui run is still watched
    assert "not charted" in capsys.readouterr().err
    run = Watcher([tmp_path / "logs" / "run1"]).runs[0]  # and in the app, the status line says it
    run.poll_rows()
    assert run.kind == "tensorboard" and 'pip install "rnn-tui[tensorboard]"' in run.error
    monkeypatch.setattr(tblog, "tensorboard_available", available)
    assert available() and main(["watch", str(tmp_path / "logs")]) == 0
    assert calls[-1].watch == (str(tmp_path / "logs" / "run1"),)


async def test_watch_follows_a_log_that_summarywriter_is_writing(tmp_path):
    logs = tmp_path / "logs"
    writer = SummaryWriter(str(logs / "run1"))
    log_steps(writer, range(10))
    dirs, roots, _ = expand_run_dirs([str(logs)])
    app = make_app(dirs, watch_roots=[str(r) for r in roots])
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            await wait_for(pilot, lambda: any(len(r.cols) == 10 for r in screen.runs), what="10 steps")
            run = run_of(screen, "run1")
            assert run.watch.kind == "tensorboard" and list(run.named) == ["train/acc", "lr"]
            status = screen.status_text().plain
            assert "step 9" in status and "loss 2.588" in status and "has no checkpoint" in status
            assert screen.view.chart != "metric"
            loss_chart = screen.query_one("#tr-chart-loss")
            await wait_for(pilot, lambda: loss_chart.drawn is not None and loss_chart.drawn.points > 0,
                           what="the loss chart")

            await tap(pilot, "m")  # the first tag
            assert (screen.view.chart, screen.view.metric) == ("metric", "train/acc")
            await wait_for(pilot, lambda: loss_chart.drawn.x_to == 9.0, what="train/acc drawn")

            log_steps(writer, range(10, 40))  # the script goes on after the app started
            writer.add_scalar("val/acc", 0.75, 40)
            writer.flush()
            await wait_for(pilot, lambda: len(run.cols) == 40 and "val/acc" in run.named, what="the new events")
            await wait_for(pilot, lambda: loss_chart.drawn.x_to == 39.0, what="the longer curve")
            assert run.named["train/acc"]["step"].tolist() == list(map(float, range(40)))

            await tap(pilot, "slash")  # a tag, through the filter
            await pilot.press(*"val/a", "enter")  # (press: a key with its character)
            assert screen.run_filter == "val/a" and screen.visible_runs == [run]
            await wait_for(pilot, lambda: screen.view.metric == "val/acc", what="the filter's tag")
            await wait_for(pilot, lambda: loss_chart.drawn.x_to == 40.0, what="val/acc drawn")
            assert "val/acc 0.75" in screen.status_text().plain
            await tap(pilot, "slash", "escape")

            second = SummaryWriter(str(logs / "run2"))  # another run starts in the log directory
            log_steps(second, range(5), tau=20.0)
            second.close()
            await wait_for(pilot, lambda: any(r.name == "run2" and len(r.cols) == 5 for r in screen.runs),
                           timeout=30, what="run2")
            await wait_for(pilot, lambda: screen.view.metric == "val/acc" and loss_chart.drawn.x_to == 40.0,
                           what="still the chosen tag")
            await tap(pilot, "M")
            assert screen.view.metric == "lr"
            model = app.lm
            await tap(pilot, "down")  # select a TensorBoard run: the other modes keep their model
            await pilot.pause(0.3)
            assert app.lm is model
    finally:
        writer.close()


async def test_a_watched_rnn_tui_run_and_a_log_overlay(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.jsonl").write_text("".join(metric_line(s) for s in range(1, 21)))
    writer = SummaryWriter(str(tmp_path / "theirs"))
    for s in range(1, 21):
        writer.add_scalar("train/loss", 1.0, s)
        writer.add_scalar("lr", 3e-3, s)
    writer.close()
    app = make_app([mine, tmp_path / "theirs"])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        screen = app.screen
        await wait_for(pilot, lambda: sum(len(r.cols) for r in screen.runs) == 40, what="both runs")
        await tap(pilot, "m")  # lr: the rnn-tui run's own, and the log's tag under the same name
        assert screen.view.metric == "lr"
        assert all(len(run_of(screen, n).named["lr"]) == 20 for n in ("mine", "theirs"))
        chart = screen.query_one("#tr-chart-loss")
        await wait_for(pilot, lambda: chart.drawn is not None and chart.drawn.points >= 2, what="two curves")
        events = []
        watcher = Watcher([tmp_path / "theirs"], report=events.append)
        watcher.poll()
        assert any(isinstance(e, RowsRead) and "lr" in e.named for e in events)


def test_a_restart_purges_what_came_after_its_step(tmp_path):
    from rnn_tui.runs import RunWatch
    from rnn_tui.screens.training import WatchedRun

    def steps(writer, lo, hi, loss):
        for s in range(lo, hi):
            writer.add_scalar("loss", loss, s)
            writer.add_scalar("acc", loss, s)
        writer.close()

    steps(SummaryWriter(str(tmp_path)), 0, 20, 1.0)  # a run that got to step 19, then died
    watch = RunWatch(tmp_path)
    run = WatchedRun(1, watch)
    for _ in range(2):
        watch.poll_rows()
    run.drain()
    assert run.cols["step"].tolist() == list(map(float, range(20))) and len(run.named["acc"]) == 20
    # Resumed from its step-10 checkpoint: TensorBoard drops the points logged past it.
    steps(SummaryWriter(str(tmp_path), purge_step=10), 10, 15, 9.0)
    purges = [watch.poll_rows().purge for _ in range(2)]
    assert purges[0] == 10.0 or purges[1] == 10.0
    assert run.drain()
    assert run.cols["step"].tolist() == list(map(float, range(15)))
    assert run.cols["loss"].tolist() == [1.0] * 10 + [9.0] * 5
    assert run.named["acc"]["value"].tolist() == [1.0] * 10 + [9.0] * 5
    fresh = EventLog(tmp_path)  # both files at once: purged while reading
    read = fresh.poll()
    rows = read.rows + fresh.poll().rows
    assert [r[2] for r in rows] == [1.0] * 10 + [9.0] * 5 and read.purge == 10.0


def test_a_hostile_record_leaves_the_rest_of_its_file_out(tmp_path):
    import struct

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    writer = SummaryWriter(str(tmp_path / "a"))
    for s in range(5):
        writer.add_scalar("loss", 1.0, s)
    writer.close()
    header = struct.pack("<Q", 1 << 50)  # a record that says it is a petabyte long
    with open(event_files(tmp_path / "a")[0], "ab") as fh:
        fh.write(header + struct.pack("<I", masked_crc32c(header)) + b"x" * 100)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "events.out.tfevents.1.host").write_bytes(b"\x00" * 100_000)  # not records at all
    watcher = Watcher([tmp_path / "a", tmp_path / "b"])
    for _ in range(3):
        watcher.poll()
    a, b = watcher.runs
    assert len(a.take_all()[1]) == 5 and "could not be read" in a.error
    assert len(b.take_all()[1]) == 0 and b.kind == "tensorboard" and b.state() == "live"


def test_the_app_given_a_folder_of_logs_or_runs_watches_them(tmp_path, monkeypatch, capsys):
    from rnn_tui import app as app_mod
    from rnn_tui.cli import main

    SummaryWriter(str(tmp_path / "logs" / "run1")).close()
    calls = []
    monkeypatch.setattr(app_mod, "run_app", lambda settings: calls.append(settings))
    assert main([str(tmp_path / "logs")]) == 0  # `rnn-tui LOGDIR`, as `rnn-tui watch LOGDIR`
    assert calls[-1].watch == (str(tmp_path / "logs" / "run1"),) and calls[-1].mode == "training"
    mine = tmp_path / "runs" / "mine"
    mine.mkdir(parents=True)
    (mine / "metrics.jsonl").write_text(metric_line(1))
    assert main([str(tmp_path / "runs")]) == 0
    assert calls[-1].watch == (str(mine),) and calls[-1].watch_roots == (str(tmp_path / "runs"),)
    empty = tmp_path / "empty"
    empty.mkdir()
    n_calls = len(calls)
    capsys.readouterr()
    assert main([str(empty)]) == 2  # no runs in it: one line before the app, pointing at watch
    assert len(calls) == n_calls and "rnn-tui watch" in capsys.readouterr().err


async def test_a_chart_of_a_column_the_logs_lack_says_so(tmp_path):
    """SummaryWriter logs of loss alone: the tokens/s chart says these logs have none."""
    logs = tmp_path / "logs"
    writer = SummaryWriter(str(logs / "run1"))
    log_steps(writer, range(6))
    writer.close()
    dirs, roots, _ = expand_run_dirs([str(logs)])
    app = make_app(dirs, watch_roots=[str(r) for r in roots])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        screen = app.screen
        await wait_for(pilot, lambda: any(len(r.cols) == 6 for r in screen.runs), what="6 steps")
        loss = screen.query_one("#tr-chart-loss")
        await wait_for(pilot, lambda: loss.drawn is not None and loss.drawn.points > 0, what="the loss chart")
        assert "not in these runs' logs" not in loss.drawn.title
        speed = screen.query_one("#tr-chart-speed")
        for _ in range(4):
            if screen.view.chart == "speed":
                break
            await tap(pilot, "c")
        assert screen.view.chart == "speed"
        await wait_for(pilot, lambda: speed.drawn is not None and "tokens/s" in speed.drawn.title,
                       what="the tokens/s chart")
        assert speed.drawn.title.endswith("not in these runs' logs") and speed.drawn.points == 0
