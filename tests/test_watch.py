"""`rnn-tui watch` and `rnn-tui serve`: following runs another process trains, in the TUI and in a browser.

The metrics files are written by the tests themselves (whole lines, a half-written line, a
rewrite), or by a real `rnn-tui train` subprocess; checkpoints are tiny seeded models saved
with the engine's atomic save, or broken on purpose.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rnn_tui.engine.checkpoint import config_digest
from rnn_tui.runs import watch as watch_mod
from rnn_tui.app import RnnTuiApp
from rnn_tui.screens.training import TrainingScreen
from rnn_tui.runs import ModelLoaded, RunWatch, Watcher, expand_run_dirs, fmt_age, run_names
from rnn_tui.runs.watch import DISCOVER_EVERY

from conftest import make_tiny_lm
from pilot_helpers import tap, wait_for

ROOT = Path(__file__).resolve().parents[1]


def metric_line(step: int, loss: float | None = None, val: float | None = None) -> str:
    loss = 3.0 * math.exp(-step / 100) + 0.5 if loss is None else loss
    return json.dumps({"step": step, "epoch": step / 500, "loss": loss, "bits": loss / math.log(2),
                       "ppl": math.exp(loss), "grad_norm": 0.5, "clipped": False, "lr": 3e-3,
                       "tokens_per_s": 50000.0, "wall_time": step * 0.01, "val_loss": val,
                       "val_bits": None, "val_ppl": None}) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def save_tiny(run_dir: Path, step: int, seed: int = 0, steps: int = 400, name: str = "model"):
    from rnn_tui.engine.checkpoint import save_checkpoint

    lm = make_tiny_lm("lstm", seed=seed)
    train = {"corpus": "grammar", "cell": "lstm", "hidden": 24, "layers": 1, "lr": 3e-3, "steps": steps,
             "clip": 1.0}
    save_checkpoint(run_dir, lm.model, lm.vocab, {"corpus": "grammar", "level": "char", "train": train,
                                                  "metrics": {"step": step}}, name=name)
    return json.loads((run_dir / ("best" if name == "best" else ".") / "config.json").read_text())


def load_cpu(directory: Path):
    from rnn_tui.engine.checkpoint import load_model

    return load_model(directory, "cpu")


def models_into(loaded: list):
    """A watcher's report callback that keeps the models it loaded."""
    return lambda event: loaded.append(event.model) if isinstance(event, ModelLoaded) else None


# ------------------------------------------------------------------ the watcher alone
def test_fmt_age_and_names():
    assert fmt_age(0.3) == "just now" and fmt_age(42) == "42 s" and fmt_age(600) == "10 min"
    assert fmt_age(7200) == "2 h" and fmt_age(None) == "?"
    assert run_names([Path("a/run"), Path("b/run"), Path("c/x")]) == ["a/run", "b/run", "x"]


def test_expand_run_dirs(tmp_path):
    (tmp_path / "runs" / "one").mkdir(parents=True)
    (tmp_path / "runs" / "one" / "metrics.jsonl").write_text("")
    (tmp_path / "runs" / "two").mkdir()
    (tmp_path / "runs" / "two" / "config.json").write_text("{}")
    (tmp_path / "runs" / "log.txt").write_text("x")
    dirs, roots, notes = expand_run_dirs([str(tmp_path / "runs"), str(tmp_path / "runs" / "log.txt"),
                                          str(tmp_path / "later"), str(tmp_path / "runs" / "one")])
    assert [d.name for d in dirs] == ["one", "two", "later"]
    assert roots == [tmp_path / "runs"]
    assert len(notes) == 1 and "is a file" in notes[0]


def test_a_run_started_in_a_watched_folder_joins(tmp_path):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "metrics.jsonl").write_text(metric_line(1))
    dirs, roots, _ = expand_run_dirs([str(runs)])
    watcher = Watcher(dirs, roots=roots)
    watcher.poll()
    assert [r.name for r in watcher.runs] == ["a"]
    (runs / "b").mkdir()
    (runs / "notes").mkdir()  # not a run: no metrics, no checkpoint
    (runs / "b" / "metrics.jsonl").write_text(metric_line(1) + metric_line(2))
    for _ in range(DISCOVER_EVERY):
        watcher.poll()
    assert [r.name for r in watcher.runs] == ["a", "b"]
    assert watcher.runs[1].last_step == 2 and watcher.runs[0].path == runs / "a"
    for _ in range(DISCOVER_EVERY):
        watcher.poll()
    assert len(watcher.runs) == 2  # found once


def test_an_empty_folder_of_runs_waits_for_its_first_run(tmp_path):
    dirs, roots, _ = expand_run_dirs([str(tmp_path)])
    assert dirs == [] and roots == [tmp_path]
    watcher = Watcher(dirs, roots=roots)
    watcher.poll()
    assert watcher.runs == [] and watcher.model_run is None
    save_tiny(tmp_path / "first", step=5)
    watcher.poll()  # polls counts from 1 now; discovery runs every DISCOVER_EVERY polls
    for _ in range(DISCOVER_EVERY):
        watcher.poll()
    assert [r.name for r in watcher.runs] == ["first"] and watcher.model_run is watcher.runs[0]


def test_an_empty_folder_that_becomes_a_run_itself_is_followed(tmp_path):
    run = tmp_path / "exp1"
    run.mkdir()  # `mkdir runs/exp1; rnn-tui watch runs/exp1; rnn-tui train ... --out runs/exp1`
    dirs, roots, _ = expand_run_dirs([str(run)])
    watcher = Watcher(dirs, roots=roots)
    watcher.poll()
    (run / "metrics.jsonl").write_text(metric_line(1) + metric_line(2))
    save_tiny(run, step=2, name="best")  # best/ holds a checkpoint: not a second run
    for _ in range(DISCOVER_EVERY + 1):
        watcher.poll()
    assert [r.path for r in watcher.runs] == [run] and watcher.runs[0].last_step == 2


def test_half_written_line_waits_and_a_rewrite_starts_over(tmp_path):
    run = RunWatch(tmp_path / "run")
    assert run.poll_metrics() == 0 and run.state() == "waiting"
    (tmp_path / "run").mkdir()
    run.poll_metrics()
    assert run.state() == "new"
    path = tmp_path / "run" / "metrics.jsonl"
    append(path, metric_line(1) + metric_line(2) + metric_line(3)[:25])  # the third line half-written
    assert run.poll_metrics() == 2
    gen, rows = run.take()
    assert rows[:, 0].tolist() == [1.0, 2.0] and gen == 0
    assert run.poll_metrics() == 0  # nothing new: the half line is not read
    append(path, metric_line(3)[25:])
    assert run.poll_metrics() == 1
    assert run.take()[1][:, 0].tolist() == [3.0]
    assert run.state() == "live"
    # A resume rewrites the file without the lines past its checkpoint.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(metric_line(1) + metric_line(2, loss=9.0))
    os.replace(tmp, path)
    assert run.poll_metrics() == 2
    gen2, rows = run.take()
    assert gen2 == gen + 1 and rows[:, 0].tolist() == [1.0, 2.0] and rows[1, 2] == 9.0
    # Truncated in place and rewritten with earlier steps (same inode): also from the top.
    with open(path, "w") as fh:
        fh.write(metric_line(1, loss=7.0) + metric_line(2, loss=7.0) + metric_line(3, loss=7.0))
    assert run.poll_metrics() == 3
    gen3, rows = run.take()
    assert gen3 == gen2 + 1 and rows[:, 2].tolist() == [7.0, 7.0, 7.0]


def test_stale_and_done(tmp_path, monkeypatch):
    now = 1_700_000_000.0
    monkeypatch.setattr(watch_mod, "clock", lambda: now)
    (tmp_path / "metrics.jsonl").write_text(metric_line(1) + metric_line(400))
    os.utime(tmp_path / "metrics.jsonl", (now - 600, now - 600))
    run = RunWatch(tmp_path)
    run.poll_metrics()
    run.poll_checkpoint()
    assert run.age() == pytest.approx(600) and run.state() == "stale"
    slow = RunWatch(tmp_path)  # lines 300 s of training apart: 600 s without one is not stale yet
    (tmp_path / "metrics.jsonl").write_text(metric_line(1).replace('"wall_time": 0.01', '"wall_time": 0')
                                            + metric_line(2).replace('"wall_time": 0.02', '"wall_time": 300'))
    os.utime(tmp_path / "metrics.jsonl", (now - 600, now - 600))
    slow.poll_metrics()
    assert slow.line_gap == 300 and slow.state() == "live"
    (tmp_path / "metrics.jsonl").write_text(metric_line(1) + metric_line(400))
    os.utime(tmp_path / "metrics.jsonl", (now - 600, now - 600))
    save_tiny(tmp_path, step=400, steps=400)
    assert run.poll_checkpoint() and run.steps == 400 and run.state() == "done"


def test_watcher_loads_the_newest_checkpoint_and_keeps_the_old_on_a_bad_one(tmp_path):
    loaded = []
    watcher = Watcher([tmp_path], load=load_cpu, report=models_into(loaded), poll_s=0.05)
    watcher.poll()
    assert loaded == []
    config = save_tiny(tmp_path, step=50)
    watcher.poll()
    assert len(loaded) == 1 and loaded[0].meta["tensors_sha256"] == config["tensors_sha256"]
    assert loaded[0].meta["watch"]["step"] == 50
    watcher.poll()
    assert len(loaded) == 1  # unchanged: not loaded again
    # best/ written after the latest: it is the newest checkpoint now.
    time.sleep(0.01)
    best = save_tiny(tmp_path, step=60, seed=1, name="best")
    watcher.poll()
    assert len(loaded) == 2 and loaded[1].meta["tensors_sha256"] == best["tensors_sha256"]
    # A checkpoint whose weights are torn: the error is kept, nothing is loaded, the old model stays.
    time.sleep(0.01)
    broken = dict(config, tensors_sha256="0" * 64)
    broken["config_sha256"] = config_digest(broken)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 10)
    (tmp_path / "config.json").write_text(json.dumps(broken))
    watcher.poll()
    run = watcher.runs[0]
    assert len(loaded) == 2 and "corrupt" in run.error
    save_tiny(tmp_path, step=70, seed=2)  # the next save repairs it
    watcher.poll()
    assert len(loaded) == 3 and run.error == ""


def test_follows_a_real_training_subprocess(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rnn_tui", "train", "grammar", "--hidden", "16", "--embed", "8",
           "--seq-len", "16", "--batch", "8", "--steps", "150", "--save-every", "50", "--eval-every", "50",
           "--device", "cpu", "--no-tensorboard", "--no-cache", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    loaded = []
    watcher = Watcher([out], load=load_cpu, report=models_into(loaded))
    run = watcher.runs[0]
    seen: list[int] = []  # rows after each poll that found some
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            watcher.poll()
            if run.rows and (not seen or run.rows != seen[-1]):
                seen.append(run.rows)
            if proc.poll() is not None:
                watcher.poll()
                break
            time.sleep(0.1)
        else:
            pytest.fail("the training subprocess did not finish in 45 s")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read().decode()[-500:]
    gen, rows = run.take()
    assert rows[:, 0].tolist() == list(range(1, 151))  # every line once, in order
    assert len(seen) >= 2 and seen == sorted(seen)  # it grew while we watched
    assert loaded and run.ckpt_step == 150 and run.state() == "done"


# ------------------------------------------------------------------ the TUI
def make_app(dirs, **kwargs) -> RnnTuiApp:
    app = RnnTuiApp(lm=make_tiny_lm(), cursor_blink=False, device="cpu", watch=[str(d) for d in dirs],
                    mode="training", watch_poll_s=0.05, **kwargs)
    return app


def run_of(screen: TrainingScreen, name: str):
    return next(r for r in screen.runs if r.watch is not None and r.name == name)


async def test_the_chart_follows_a_growing_file_and_checkpoints_reach_the_app(tmp_path):
    run_dir = tmp_path / "r1"
    app = make_app([run_dir])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await wait_for(pilot, lambda: any(r.watch is not None for r in screen.runs), what="the run")
        run = run_of(screen, "r1")
        await wait_for(pilot, lambda: run.state == "waiting", what="waiting")
        assert "waiting for" in screen.status_text().plain

        run_dir.mkdir()
        metrics = run_dir / "metrics.jsonl"
        append(metrics, "".join(metric_line(s) for s in range(1, 21)) + metric_line(21)[:30])
        await wait_for(pilot, lambda: len(run.cols) == 20, what="20 rows")
        await pilot.pause(0.4)
        assert len(run.cols) == 20  # the half-written line waits
        assert run.state == "live" and "step 20" in screen.status_text().plain
        chart = screen.query_one("#tr-chart-loss")
        await wait_for(pilot, lambda: chart.drawn is not None and chart.drawn.points > 0, what="a drawn chart")
        reached = chart.drawn.x_to
        append(metrics, metric_line(21)[30:] + "".join(metric_line(s) for s in range(22, 61)))
        await wait_for(pilot, lambda: len(run.cols) == 60, what="60 rows")
        assert run.cols["step"].tolist() == list(range(1, 61))
        await wait_for(pilot, lambda: chart.drawn.x_to > reached, what="a longer curve")

        version = app.model_version
        save_tiny(run_dir, step=50)
        await wait_for(pilot, lambda: app.model_version > version, what="the checkpoint")
        assert app.lm.meta["watch"]["run"] == "r1" and "r1 @ step 50" in app.sub_title
        assert "model: ckpt 50" in screen.status_text().plain
        version, lm = app.model_version, app.lm
        # A torn checkpoint: the old model stays, the status says why, the next save is taken.
        config = json.loads((run_dir / "config.json").read_text())
        (run_dir / "model.safetensors").write_bytes(b"\x00" * 10)
        (run_dir / "config.json").write_text(json.dumps(dict(config, tensors_sha256="1" * 64)))
        await wait_for(pilot, lambda: run.watch.error, what="the load error")
        assert app.model_version == version and app.lm is lm
        assert "checkpoint not loaded" in screen.status_text().plain
        save_tiny(run_dir, step=60, seed=3)
        await wait_for(pilot, lambda: app.model_version > version, what="the repaired checkpoint")
        assert not run.watch.error and app.lm.meta["watch"]["step"] == 60


async def test_pin_hide_and_filter_by_keyboard(tmp_path):
    dirs = [tmp_path / n for n in ("lstm-a", "gru-b", "rnn-c")]
    for i, d in enumerate(dirs):
        d.mkdir()
        (d / "metrics.jsonl").write_text("".join(metric_line(s, loss=1.0 + i) for s in range(1, 31)))
    app = make_app(dirs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        screen = app.screen
        await wait_for(pilot, lambda: sum(len(r.cols) for r in screen.runs) == 90, what="three runs")
        a, b, c = (run_of(screen, n) for n in ("lstm-a", "gru-b", "rnn-c"))
        assert screen.selected_run is a
        assert screen.visible_runs == [a, b, c]

        await tap(pilot, "down", "p")  # pin gru-b: drawn last (on top), first in the legend
        assert b.pinned and screen.visible_runs == [a, c, b]
        assert screen.query_one("#tr-legend").render().plain.startswith("━━ * gru-b")
        assert app.watcher.model_run is b.watch  # its checkpoints feed the other modes

        await tap(pilot, "down", "h")  # hide rnn-c
        assert c.hidden and screen.visible_runs == [a, b]
        await tap(pilot, "h")
        assert not c.hidden

        await tap(pilot, "slash")
        assert screen.focused is screen.query_one("#tr-filter")
        await tap(pilot, "l", "s", "t")
        assert screen.run_filter == "lst"
        assert screen.visible_runs == [a, b]  # the pinned run stays whatever the filter
        await tap(pilot, "enter")
        assert screen.focused is None and screen.run_filter == "lst"
        assert "/lst" in screen.query_one("#tr-runlist-title").render().plain
        await tap(pilot, "slash", "escape")  # escape in the filter clears it
        assert screen.run_filter == "" and screen.visible_runs == [a, c, b]

        await tap(pilot, "r")  # the runs list hides; its keys go with it
        assert screen.query_one("#tr-runlist").has_class("-hidden")
        await tap(pilot, "p")
        assert b.pinned


async def test_a_run_started_in_the_watched_folder_appears_on_the_chart(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    app = make_app([], watch_roots=[str(runs)])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        screen = app.screen
        assert not [r for r in screen.runs if r.watch is not None]
        (runs / "late").mkdir()
        (runs / "late" / "metrics.jsonl").write_text("".join(metric_line(s) for s in range(1, 11)))
        await wait_for(pilot, lambda: any(r.name == "late" and len(r.cols) == 10 for r in screen.runs),
                       what="the new run's rows")
        assert screen.selected_run is run_of(screen, "late")
        version = app.model_version
        save_tiny(runs / "late", step=10)
        await wait_for(pilot, lambda: app.model_version > version, what="its checkpoint")
        assert app.lm.meta["watch"]["run"] == "late"
        assert app.watcher.running
    assert not app.watcher.running  # the app stops its watcher when it exits


# ------------------------------------------------------------------ command line
def test_cli_watch_and_positional_run_dir(tmp_path, monkeypatch):
    from rnn_tui import app as app_mod
    from rnn_tui.cli import main

    calls = []
    monkeypatch.setattr(app_mod, "run_app", lambda settings: calls.append(settings))
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(metric_line(1))
    assert main(["watch", str(run), str(tmp_path / "later")]) == 0
    assert calls[-1].watch == (str(run), str(tmp_path / "later")) and calls[-1].mode == "training"
    assert calls[-1].model is None  # no checkpoint yet: the watcher loads the first one
    assert main([str(run)]) == 0  # a run dir with metrics is followed; no checkpoint yet: bundled model
    assert calls[-1].watch == (str(run),) and calls[-1].model is None
    save_tiny(run, step=1)
    assert main([str(run)]) == 0
    assert calls[-1].watch == (str(run),) and calls[-1].model == str(run)
    (tmp_path / "f.txt").write_text("x")
    assert main(["watch", str(tmp_path / "f.txt")]) == 2
    empty = tmp_path / "runs"
    empty.mkdir()
    assert main(["watch", str(empty)]) == 0  # a folder with no run yet: new runs join later
    assert calls[-1].watch == () and calls[-1].watch_roots == (str(empty),)


def test_serve_command_line():
    from rnn_tui.serve import app_command

    cmd = app_command(["lstm"], device="cpu")
    assert cmd.endswith("-m rnn_tui lstm --device cpu") and sys.executable in cmd
    assert " watch " in app_command(["a", "b"])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_in_a_browser(tmp_path):
    pytest.importorskip("textual_serve")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rnn_tui", "serve", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        line = proc.stdout.readline().decode()  # "rnn-tui: serving on http://127.0.0.1:PORT/?token=…"
        url = line.split(" on ", 1)[-1].split()[0] if " on " in line else ""
        assert url.startswith(f"http://127.0.0.1:{port}/?token="), line
        page = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    page = resp.read().decode("utf-8", "replace")
                    ctype = resp.headers.get("Content-Type", "")
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None, f"no answer on port {port}: {proc.stderr.read().decode()[-500:] if proc.poll() is not None else ''}"
        assert "text/html" in ctype and "<html" in page.lower()
        assert ">rnn-tui<" in page  # textual-serve shows the app's name on its start page
        with pytest.raises(urllib.error.HTTPError) as refused:  # without the token: 403
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert refused.value.code == 403
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_serve_without_textual_serve_says_how_to_install(monkeypatch, capsys):
    import builtins

    from rnn_tui.serve import serve

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("textual_serve"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert serve([]) == 2
    err = capsys.readouterr().err
    assert 'pip install "rnn-tui[serve]"' in err and len(err.strip().splitlines()) == 1


async def test_watching_the_form_follows_the_runs_first_checkpoint_not_the_bundled_model(tmp_path, capsys):
    """`rnn-tui watch RUN` before the run saves: the bundled model is shown, then the run's
    first checkpoint fills the form; a later checkpoint leaves what the user typed."""
    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model

    run_dir = tmp_path / "r1"
    app = RnnTuiApp(lm=load_model("lstm", "cpu"), cursor_blink=False, device="cpu", watch=[str(run_dir)],
                    mode="training", watch_poll_s=0.05)
    small = ["--embed", "8", "--batch", "4", "--seq-len", "8", "--no-tensorboard"]
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.watcher is not None, what="the watcher")
        form = app.screen.form
        await wait_for(pilot, lambda: form.values()["hidden"] == "64", what="the bundled LSTM's size")
        assert main(["train", "grammar", "--level", "word", "--cell", "gru", "--hidden", "12", "--steps", "3",
                     *small, "--out", str(run_dir)]) == 0
        await wait_for(pilot, lambda: form.values()["hidden"] == "12", timeout=20, what="the run's checkpoint")
        assert form.values()["level"] == "word" and form.values()["cell"] == "gru"
        form.fill(hidden=20)  # the user's edit
        assert main(["train", "--resume", str(run_dir), "--steps", "6"]) == 0
        await wait_for(pilot, lambda: app.lm.meta["metrics"]["step"] == 6, timeout=20, what="the newer checkpoint")
        await pilot.pause(0.3)
        assert form.values()["hidden"] == "20"
    capsys.readouterr()
