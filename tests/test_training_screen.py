"""Pilot tests for mode 2, Training: the real engine on tiny models, driven by keyboard."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import numpy as np
import pytest

import rnn_tui.app
from rnn_tui.app import RnnTuiApp
from rnn_tui.render.fmt import convert_loss, fmt_duration
from rnn_tui.render.ticks import nice_ticks
from rnn_tui.screens.training import SMOOTHING_LEVELS, TrainingRun, TrainingScreen, parse_form
from rnn_tui.widgets.chart import Chart

from conftest import make_tiny_lm
from pilot_helpers import notes, tap, wait_for

SIZE = (80, 24)
# Tiny and quick: a few milliseconds a step on one CPU core.
TINY = dict(hidden=16, embed=8, seq_len=16, batch=8, eval_every=20, steps=40)


@pytest.fixture(autouse=True)
def quick_snapshots(monkeypatch):
    monkeypatch.setattr(TrainingScreen, "snapshot_every_s", 0.5)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train ~30x faster on one intra-op thread than on two busy cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TrainingFirstApp(RnnTuiApp):
    """The real app, opening on the training screen (the stepper's first trace is not needed)."""

    DEFAULT_MODE = "training"
    CSS_PATH = str(Path(rnn_tui.app.__file__).with_name("app.tcss"))  # relative to the app's module


def make_app(tmp_path, **train) -> RnnTuiApp:
    return TrainingFirstApp(lm=make_tiny_lm(), cursor_blink=False, device="cpu", runs_dir=tmp_path / "runs",
                            train_defaults={**TINY, **train})


async def open_training(pilot) -> TrainingScreen:
    await wait_for(pilot, lambda: pilot.app.engine_ready, what="the engine")
    screen = pilot.app.screen
    assert isinstance(screen, TrainingScreen)
    return screen


def last_step(run: TrainingRun) -> int:
    return int(run.cols["step"][-1]) if len(run.cols) else 0


def points_drawn(chart: Chart) -> int:
    """How many points the chart's last drawing plotted (0 before its first)."""
    return chart.drawn.points if chart.drawn is not None else 0


# ------------------------------------------------------------------------ pure helpers
def test_parse_form_names_the_bad_field():
    from rnn_tui.engine.errors import ConfigError

    good = {"corpus": "grammar", "level": "char", "cell": "gru", "hidden": "16", "layers": "1",
            "init": "default", "optimizer": "adam", "lr": "1e-3", "seq_len": "8", "clip": "0",
            "steps": "5"}
    kwargs = parse_form(good)
    assert kwargs["hidden"] == 16 and kwargs["lr"] == 1e-3 and kwargs["cell"] == "gru"
    with pytest.raises(ConfigError, match="hidden"):
        parse_form({**good, "hidden": "sixteen"})
    with pytest.raises(ConfigError, match="lr"):
        parse_form({**good, "lr": "nan"})


def test_units_ticks_and_durations():
    nats = np.array([math.log(2.0), 0.0])
    assert np.allclose(convert_loss(nats, "bits"), [1.0, 0.0])
    assert np.allclose(convert_loss(nats, "ppl"), [2.0, 1.0])
    assert nice_ticks(1, 300, 4) == [100, 200, 300]
    assert fmt_duration(62) == "1:02" and fmt_duration(3723) == "1:02:03" and fmt_duration(None) == "?"


def test_incremental_smoothing_equals_full_ema():
    from rnn_tui.engine.train import TrainConfig
    from rnn_tui.render.series import ema

    run = TrainingRun(index=1, config=TrainConfig(), color=(1, 2, 3))
    values = np.random.default_rng(0).normal(size=300)
    values[17] = math.nan
    for i, v in enumerate(values[:200]):
        run.cols.append({"step": i, "epoch": 0, "loss": v, "grad": 1, "tps": 1, "time": i, "wall": i,
                         "val": math.nan})
    run.smoothed("loss", 0.9)  # cached, then extended point by point
    for i, v in enumerate(values[200:], start=200):
        run.cols.append({"step": i, "epoch": 0, "loss": v, "grad": 1, "tps": 1, "time": i, "wall": i,
                         "val": math.nan})
    got = run.smoothed("loss", 0.9)
    np.testing.assert_allclose(got, ema(values, 0.9), rtol=1e-9, equal_nan=True)


# ------------------------------------------------------------------------ the screen
async def test_train_pause_resume_stop_save(tmp_path):
    from rnn_tui.engine.checkpoint import load_model

    app = make_app(tmp_path, steps=100000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        assert "idle" in str(screen.status_text())
        version = app.model_version
        await pilot.press("space")
        run = screen.runs[-1]
        assert run.config.hidden == 16
        await wait_for(pilot, lambda: last_step(run) >= 5, what="training steps")
        assert run.state == "running"
        assert app.trainer is run.trainer
        status = str(screen.status_text())
        for word in ("step", "epoch", "loss", "bits/tok", "tok/s", "ETA"):
            assert word in status, status
        chart = screen.query_one("#tr-chart-loss", Chart)
        await wait_for(pilot, lambda: points_drawn(chart) > 0, what="a drawn chart")
        # Downsampling caps the points drawn, so growth shows as the x range reaching further.
        reached = chart.drawn.x_to
        await wait_for(pilot, lambda: chart.drawn.x_to > reached, what="the series to grow")

        await tap(pilot, "space")  # pause
        assert run.state == "paused"
        # The step in flight lands, then nothing more.
        trainer = run.trainer
        seen = [-1, -2]  # the first look compares with nothing

        def settled() -> bool:
            seen[0], seen[1] = trainer.step, seen[0]
            return seen[0] == seen[1]

        await wait_for(pilot, settled, timeout=10, what="the step in flight", every=0.4)
        paused_at = trainer.step
        await pilot.pause(0.8)
        assert trainer.step == paused_at
        assert last_step(run) == paused_at  # everything it logged reached the screen
        assert "paused" in str(screen.status_text())

        await tap(pilot, "space")  # resume
        assert run.state == "running"
        await wait_for(pilot, lambda: last_step(run) > paused_at + 2, what="training to resume")
        await wait_for(pilot, lambda: app.model_version > version, what="a model snapshot", timeout=10)

        await tap(pilot, "ctrl+s")
        await wait_for(pilot, lambda: any("saved run #1 to" in n for n in notes(app)), what="the checkpoint")
        lm = load_model(run.saved_to, "cpu")
        assert lm.config.hidden == 16 and lm.config.cell == "lstm"
        assert str(tmp_path / "runs") in run.saved_to and run.saved_to.endswith("-lstm")

        await tap(pilot, "s")
        await wait_for(pilot, lambda: run.state == "stopped", what="the run to stop")
        assert run.finished.is_set()
        stopped_at = last_step(run)
        await pilot.pause(0.4)
        assert last_step(run) == stopped_at


async def test_keys_stay_responsive_while_training(tmp_path):
    app = make_app(tmp_path, steps=100000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        run = screen.runs[-1]
        await wait_for(pilot, lambda: last_step(run) >= 3, what="training steps")
        # The key is handled while the worker keeps training. How fast is a benchmark's
        # question (`rnn-tui bench --tui` measures keypress-to-paint), not a unit test's.
        before = screen.view.smoothing
        step_at_key = last_step(run)
        app.simulate_key("full_stop")
        await wait_for(pilot, lambda: screen.view.smoothing > before, timeout=10, what="the key")
        assert "smooth" in str(screen.query_one("#tr-view").render())
        assert run.state == "running"
        await wait_for(pilot, lambda: last_step(run) > step_at_key + 2, what="training to go on")
        await tap(pilot, "s")
        await wait_for(pilot, run.finished.is_set, what="the worker to end")


async def test_quitting_while_training_stops_the_worker(tmp_path):
    app = make_app(tmp_path, steps=100000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        run = screen.runs[-1]
        await wait_for(pilot, lambda: last_step(run) >= 3, what="training steps")
        start = time.perf_counter()
        app.simulate_key("ctrl+q")  # it asks first (the weights were never saved) ...
        await wait_for(pilot, lambda: app.screen is not screen, what="the question")
        app.simulate_key("q")  # ... quit without saving
        await pilot.pause(0.1)
    assert run.finished.wait(10.0), "the training thread kept running after quit"
    assert time.perf_counter() - start < 15.0  # a hang guard, not a speed target


async def test_divergence_shows_a_banner(tmp_path):
    app = make_app(tmp_path, lr=1e4, optimizer="sgd", clip=0.0, steps=50)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        run = screen.runs[-1]
        await wait_for(pilot, lambda: run.state == "diverged", what="divergence")
        banner = screen.query_one("#tr-banner")
        assert banner.display and banner.has_class("-shown")
        text = str(banner.render())
        assert "DIVERGED" in text and "kept" in text
        # A new run clears the banner.
        screen.form.fill(lr=1e-3, optimizer="adam", steps=5)
        await pilot.press("space")
        assert not banner.has_class("-shown")
        await wait_for(pilot, lambda: screen.runs[-1].state == "done", what="the second run")


async def test_bad_form_values_are_shown_and_nothing_is_lost(tmp_path):
    app = make_app(tmp_path, steps=8)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: screen.runs[-1].state == "done", what="the first run")
        assert len(screen.runs) == 1
        # Keyboard into the form: hidden size 0 is refused by TrainConfig, next to the form.
        await pilot.press("f")  # the form hides itself while training on a narrow screen
        hidden = screen.query_one("#tr-hidden")
        hidden.focus()
        await pilot.press("0", "enter")
        error = str(screen.query_one("#tr-form-error").render())
        assert "hidden" in error and "positive" in error
        assert len(screen.runs) == 1
        # A corpus path that does not exist: a clear notification, the old run stays.
        screen.form.fill(hidden=16, corpus=str(tmp_path / "missing.txt"))
        await pilot.press("escape", "space")
        await wait_for(pilot, lambda: any("missing.txt" in n and "no such file" in n for n in notes(app)),
                       what="the notification")
        assert "missing.txt" in str(screen.query_one("#tr-form-error").render())
        assert len(screen.runs) == 1 and screen.runs[0].state == "done"
        assert screen.form.values()["corpus"].endswith("missing.txt")  # the form keeps it
        # A file that exists but is not text: the engine's CorpusError, from the worker.
        binary = tmp_path / "weights.bin"
        binary.write_bytes(b"\x00\x01\x02" * 100)
        screen.form.fill(corpus=str(binary))
        await pilot.press("space")
        await wait_for(pilot, lambda: any("binary" in n for n in notes(app)), what="the corpus error")
        assert "binary" in str(screen.query_one("#tr-form-error").render())
        assert len(screen.runs) == 1 and screen.runs[0].state == "done"  # the failed run left nothing


async def test_runs_overlay_and_view_keys(tmp_path):
    app = make_app(tmp_path, steps=25)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_training(pilot)
        assert screen.view.chart == "all"  # room for all three charts
        await tap(pilot, "space")
        await wait_for(pilot, lambda: screen.runs[-1].state == "done", what="run 1")
        screen.form.fill(cell="rnn")
        await tap(pilot, "space")
        await wait_for(pilot, lambda: len(screen.runs) == 2 and screen.runs[-1].state == "done", what="run 2")
        assert [r.config.cell for r in screen.runs] == ["lstm", "rnn"]
        assert screen.runs[0].color != screen.runs[1].color
        legend = str(screen.query_one("#tr-legend").render())
        assert "#1 lstm" in legend and "#2 rnn" in legend
        await pilot.pause(0.4)
        charts = [c for c in screen.query(Chart)]
        assert all(points_drawn(c) > 0 for c in charts)

        view = screen.view
        await tap(pilot, "u")
        assert view.unit == "bits"
        await tap(pilot, "u")
        assert view.unit == "ppl"
        await tap(pilot, "y", "x", "w")
        assert view.log_y and view.log_x and view.xaxis == "time"
        await pilot.pause()
        for chart in screen.query(Chart):  # plotext logs its data in place: twice is the test
            for _ in range(2):
                assert "could not be drawn" not in str(chart.render())
        await tap(pilot, "w")
        assert view.xaxis == "wall"
        await tap(pilot, "c")
        assert view.chart == "loss"
        for _ in range(len(SMOOTHING_LEVELS) + 1):
            await tap(pilot, "full_stop")
        assert view.smoothing == 0.999
        for _ in range(len(SMOOTHING_LEVELS) + 1):
            await tap(pilot, "comma")
        assert view.smoothing == 0.0
        await pilot.pause(0.4)
        assert points_drawn(screen.query_one("#tr-chart-loss", Chart)) > 0
        await tap(pilot, "delete")
        assert screen.runs == []


async def test_bindings_have_ids_and_tooltips():
    for binding in TrainingScreen.BINDINGS:
        assert binding.id and binding.tooltip, binding


def test_step_counts_in_the_runs_list_are_short_and_exact_enough():
    from rnn_tui.render.fmt import fmt_steps

    assert [fmt_steps(n) for n in (7, 1288, 9999, 12890, 123456, 1_288_000)] == \
        ["7", "1288", "9999", "12.9k", "123k", "1.29M"]


# ------------------------------------------------------------------------ defects (each test failed before its fix)
def footer_keys(app) -> dict:
    """The footer's keys on screen: key -> its FooterKey widget."""
    return {k.key: k for k in app.screen.query("FooterKey")}


async def test_starting_a_run_from_a_field_gives_the_keys_back(tmp_path):
    """Enter in a field starts the run, and the keyboard leaves the form: 1 changes screen,
    ? opens the help, and neither lands in the field (the form stays shown on a wide screen)."""
    from rnn_tui.screens.help import HelpScreen

    app = make_app(tmp_path, steps=100000)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_training(pilot)
        screen.query_one("#tr-steps").focus()
        await pilot.pause()
        await tap(pilot, "enter")
        await wait_for(pilot, lambda: screen.runs, what="the run")
        run = screen.runs[-1]
        assert run.active and screen.focused is None, "the keys stayed in the field"
        assert not screen.form.has_class("-hidden")  # wide enough: the form stays, without the keys
        await tap(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await tap(pilot, "escape", "1")
        assert app.current_mode == "stepper"
        await tap(pilot, "2")
        assert app.screen is screen and screen.form.values()["steps"] == "100000"
        await tap(pilot, "s")
        await wait_for(pilot, run.finished.is_set, what="the worker to end")


async def test_the_footer_shows_how_to_leave_a_field_however_narrow(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(64, 24)) as pilot:
        screen = await open_training(pilot)
        for field in ("#tr-cell", "#tr-steps"):  # a list and a text field
            screen.query_one(field).focus()
            await pilot.pause()
            await pilot.pause()
            keys = footer_keys(app)
            leave = keys["escape"]
            assert leave.description == "Leave field"
            assert leave.region.right <= keys["ctrl+p"].region.x, "cut off under the palette key"
        await tap(pilot, "escape")
        await pilot.pause()
        assert screen.focused is None and "escape" not in footer_keys(app)


async def test_quitting_while_training_asks_and_saves(tmp_path):
    from rnn_tui.engine.checkpoint import load_model

    app = make_app(tmp_path, steps=100000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        run = screen.runs[-1]
        await wait_for(pilot, lambda: last_step(run) >= 3, what="training steps")
        await tap(pilot, "ctrl+q")
        await pilot.pause()
        assert app.return_code is None, "ctrl+q quit at once"
        from rnn_tui.screens.training import QuitScreen

        assert isinstance(app.screen, QuitScreen)
        assert "#1 lstm" in str(app.screen.query_one("#quit-runs").render())
        await tap(pilot, "escape")  # cancel: back to training
        assert app.screen is screen and run.state == "running" and app.return_code is None
        await tap(pilot, "ctrl+q", "s")  # save and quit
        deadline = time.monotonic() + 30
        while app.return_code is None:
            assert time.monotonic() < deadline, "the app did not quit after saving"
            await asyncio.sleep(0.05)
    assert run.finished.wait(10.0)
    assert any(f"saved run #1 to {run.saved_to}" in n for n in notes(app))
    lm = load_model(run.saved_to, "cpu")
    assert lm.config.hidden == 16 and str(tmp_path / "runs") in run.saved_to
    assert lm.meta["metrics"]["step"] >= 3


async def test_quitting_with_nothing_unsaved_quits_at_once(tmp_path):
    app = make_app(tmp_path, steps=8)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: screen.runs[-1].state == "done", what="the run")
        await tap(pilot, "ctrl+s")
        await wait_for(pilot, lambda: screen.runs[-1].saved_to, what="the save")
        app.simulate_key("ctrl+q")
        deadline = time.monotonic() + 10
        while app.return_code is None:
            assert time.monotonic() < deadline, "ctrl+q did not quit"
            await asyncio.sleep(0.05)


async def test_the_header_names_the_weights_of_a_training_run(tmp_path):
    app = make_app(tmp_path, steps=100000)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        version = app.model_version
        await pilot.press("space")
        run = screen.runs[-1]
        await wait_for(pilot, lambda: app.model_version > version, what="a model snapshot", timeout=20)
        step = app.lm.meta["metrics"]["step"]
        assert f"#1 lstm @ step {step}" in app.sub_title
        await tap(pilot, "1")  # every screen shows these weights, and the header says so
        assert app.current_mode == "stepper" and "#1 lstm @ step" in app.sub_title
        await tap(pilot, "2", "s")
        await wait_for(pilot, run.finished.is_set, what="the worker to end")


async def test_clearing_runs_clears_the_status_line(tmp_path):
    app = make_app(tmp_path, steps=8)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: screen.runs[-1].state == "done", what="the run")
        status = screen.query_one("#tr-status")
        await wait_for(pilot, lambda: "#1 done" in str(status.render()), what="the status line")
        await tap(pilot, "delete")
        assert screen.runs == []
        assert "idle" in str(status.render()) and "#1" not in str(status.render())


async def test_the_footer_keeps_help_at_80_columns(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        footer = app.screen.query_one("Footer")
        help_key = next(k for k in footer.query("FooterKey") if "Help" in str(k.render()))
        # the whole "? Help" is on screen, left of "^p palette" (it was cut to "? Hel")
        assert help_key.region.width > 0 and help_key.region.right <= 80 - len("▏^p palette")
        view = str(app.screen.query_one("#tr-view").render())
        assert "log-x off" in view and "…" not in view


async def test_a_gated_run_charts_its_saturated_keep_gates_live(tmp_path):
    from rnn_tui.screens.training.worker import SATURATION_NAME

    app = make_app(tmp_path, cell="lstm", steps=40)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("space")
        screen = app.screen
        await wait_for(pilot, lambda: screen.runs and screen.runs[-1].state == "done", what="the run", timeout=120)
        await pilot.pause(0.5)
        series = screen.runs[-1].named.get(SATURATION_NAME["lstm"])
        assert series is not None and len(series) >= 2  # at the start, and as training went on
        assert all(0.0 <= v <= 1.0 for v in series["value"])
        await pilot.press("m")
        await pilot.pause()
        assert "metric" in str(screen.query_one("#tr-view").render())


async def test_the_form_follows_a_models_corpus_only_when_it_can_train_on_it(tmp_path):
    lm = make_tiny_lm()
    lm.meta["corpus"] = "mine_state.pt"  # an imported model names its weights file: nothing to train on
    app = TrainingFirstApp(lm=lm, cursor_blink=False, device="cpu", runs_dir=tmp_path / "runs",
                           train_defaults=dict(TINY))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("1")
        await pilot.press("2")  # shown again: the form starts from the model on screen
        await pilot.pause()
        assert screen.form.values()["corpus"] == "grammar"
        assert screen.form.values()["hidden"] == str(lm.config.hidden)  # the rest follows the model


async def test_a_run_saved_from_the_app_is_a_whole_run_directory(tmp_path, monkeypatch, capsys):
    """ctrl+s: the checkpoint, its whole curve in metrics.jsonl and absolute file paths, so
    `watch` draws it and `--resume` works from another directory; a second ctrl+s updates the
    same directory instead of making another."""
    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.runs.metrics import read_metrics

    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("the cat sat on the mat. the dog ran.\n" * 60, encoding="utf-8")
    monkeypatch.chdir(work)
    app = make_app(tmp_path, steps=30, corpus="mine.txt")  # relative to where the app runs
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_training(pilot)
        await pilot.press("space")
        run = screen.runs[-1]
        await wait_for(pilot, lambda: run.state == "done", what="the run")
        await tap(pilot, "ctrl+s")
        await wait_for(pilot, lambda: run.saved_to, what="the first save")
        first = run.saved_to
        await tap(pilot, "ctrl+s")
        await wait_for(pilot, lambda: sum("saved run #1" in n for n in notes(app)) == 2, what="the second save")
        assert run.saved_to == first
        await pilot.press("ctrl+s", "ctrl+s")  # twice, before the first is written: still one directory
        await wait_for(pilot, lambda: sum("saved run #1" in n for n in notes(app)) == 4, what="two more saves")
        assert run.saved_to == first
    saved = Path(first)
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    records, _, _ = read_metrics(saved / "metrics.jsonl")
    assert [r["step"] for r in records] == [m.step for m in run.trainer.history] and records[-1]["step"] == 30
    lm = load_model(saved, "cpu")
    assert lm.meta["train"]["corpus"] == str(work / "mine.txt")
    monkeypatch.chdir(tmp_path)  # elsewhere: the run still finds its text
    assert main(["train", "--resume", str(saved), "--steps", "34"]) == 0
    assert load_model(saved, "cpu").meta["metrics"]["step"] == 34
    records, _, _ = read_metrics(saved / "metrics.jsonl")
    assert records[-1]["step"] == 34 and [r["step"] for r in records] == sorted({r["step"] for r in records})
    capsys.readouterr()
