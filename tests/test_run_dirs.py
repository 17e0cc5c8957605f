"""rnn_tui.runs on its own: the run-directory layout, metrics.jsonl read and written one whole
line at a time (torn, huge and hostile files included), and the watcher reporting through its
callback with no app at all.

Checkpoints are the engine's (tiny seeded models); everything else is files the tests write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rnn_tui.runs import (CONFIG_NAME, COLUMNS, METRICS_NAME, RECORD_KEYS, SUMMARY_KEYS, CheckpointFound,
                          LoadFailed, MetricsWriter, ModelLoaded, RowsRead, RunAdded, StateChanged, StepMetrics,
                          Watcher, is_run, new_run_dir, read_config, read_metrics, record_row, runs_in,
                          trim_metrics)
from rnn_tui.runs import files, layout, metrics
from rnn_tui.runs.watch import DISCOVER_EVERY

from conftest import make_tiny_lm

ROOT = Path(__file__).resolve().parents[1]


def line(step: int, **extra) -> str:
    return json.dumps({"step": step, "epoch": step / 100, "loss": 2.0 - step / 100, "grad_norm": 0.5,
                       "tokens_per_s": 1000.0, "wall_time": step * 0.1, "val_loss": None, **extra}) + "\n"


def save_tiny(run_dir: Path, step: int, steps: int = 10, name: str = "model") -> dict:
    from rnn_tui.engine.checkpoint import save_checkpoint

    lm = make_tiny_lm("lstm")
    save_checkpoint(run_dir, lm.model, lm.vocab, {"corpus": "grammar", "level": "char",
                                                  "train": {"cell": "lstm", "steps": steps},
                                                  "metrics": {"step": step}}, name=name)
    return json.loads((run_dir / ("best" if name == "best" else ".") / CONFIG_NAME).read_text())


def test_the_package_imports_neither_torch_nor_textual():
    code = "import sys, rnn_tui.runs; print([m for m in ('torch', 'textual') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ the line schema
def test_a_step_metrics_line_has_the_record_keys_and_no_nan():
    m = StepMetrics(step=3, epoch=0.1, loss=float("nan"), bits=1.0, ppl=float("inf"), grad_norm=0.5,
                    clipped=False, lr=1e-3, tokens_per_s=10.0, wall_time=1.5)
    rec = json.loads(m.to_json())
    assert tuple(rec) == RECORD_KEYS and rec["loss"] is None and rec["ppl"] is None
    assert record_row(rec)[:2] == (3.0, 0.1) and len(record_row(rec)) == len(COLUMNS)
    assert record_row({"loss": 1.0}) is None and record_row([1, 2]) is None  # no step: not a row


def test_the_trainer_summary_and_a_checkpoint_have_the_summary_keys(tmp_path):
    from rnn_tui.engine.corpus import load_corpus
    from rnn_tui.engine.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(corpus="grammar", hidden=8, embed=4, seq_len=8, batch=2, device="cpu"),
                      corpus=load_corpus("grammar", "char", seed=0, size=300))
    assert tuple(trainer.metrics_summary()) == SUMMARY_KEYS
    config = save_tiny(tmp_path, step=4)
    assert tuple(config["metrics"])[:len(SUMMARY_KEYS)] == SUMMARY_KEYS


# ------------------------------------------------------------------ whole lines
def test_a_torn_last_line_is_never_read(tmp_path):
    path = tmp_path / METRICS_NAME
    path.write_text(line(1) + line(2) + line(3)[:20])
    records, cursor, restarted = read_metrics(path)
    assert [r["step"] for r in records] == [1, 2] and not restarted and not cursor.more
    assert read_metrics(path, cursor)[0] == []  # still torn: still nothing
    with open(path, "a") as fh:
        fh.write(line(3)[20:] + "[1, 2]\n" + "not json\n" + "[" * 100_000 + "\n" + line(4))
    records, cursor, _ = read_metrics(path, cursor)
    assert [r["step"] for r in records] == [3, 4]  # only JSON objects are records


def test_reads_are_bounded_and_an_overlong_line_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "MAX_LINE", 200)
    path = tmp_path / METRICS_NAME
    path.write_text("".join(line(s) for s in range(1, 6)) + '{"step": 99, "pad": "' + "x" * 2000 + '"}\n'
                    + "".join(line(s) for s in range(6, 11)))
    steps, cursor, calls = [], None, 0
    while True:
        records, cursor, _ = read_metrics(path, cursor, limit=500)
        calls += 1
        steps += [r["step"] for r in records]
        if not cursor.more:
            break
    assert steps == list(range(1, 11)) and calls > 3  # 500 bytes at a time, the long line dropped
    # A line over the limit still being written is skipped as it grows, and what follows it is read.
    with open(path, "a") as fh:
        fh.write("y" * 700)
    records, cursor, _ = read_metrics(path, cursor, limit=500)
    assert records == [] and cursor.skip
    with open(path, "a") as fh:
        fh.write("y" * 100 + "\n" + line(11))
    while True:
        records, cursor, _ = read_metrics(path, cursor, limit=500)
        if records or not cursor.more:
            break
    assert [r["step"] for r in records] == [11] and not cursor.skip


def test_the_writer_appends_whole_lines(tmp_path):
    writer = MetricsWriter(tmp_path / "new" / METRICS_NAME)  # its directory is made
    writer.open()
    for s in (1, 2):
        writer.append(json.dumps({"step": s}))
    writer.close()
    writer.open()  # reopened: appends
    writer.append(json.dumps({"step": 3}))
    writer.close()
    assert (tmp_path / "new" / METRICS_NAME).read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'


def test_trim_drops_lines_past_a_step_and_a_torn_one_and_leaves_a_clean_file_alone(tmp_path):
    path = tmp_path / METRICS_NAME
    assert not trim_metrics(path, 5)  # no file: nothing to do
    path.write_text("".join(line(s) for s in range(1, 6)))
    inode = os.stat(path).st_ino
    assert not trim_metrics(path, 5) and os.stat(path).st_ino == inode  # untouched
    path.write_text("".join(line(s) for s in range(1, 9)) + "garbage\n" + line(9)[:10])
    assert trim_metrics(path, 5)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert not list(tmp_path.glob(".*.tmp"))


def test_bounded_reads_refuse_a_huge_config(tmp_path, monkeypatch):
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"pad": "x" * 3000}))
    with pytest.raises(files.TooLarge):
        files.read_bounded(tmp_path / CONFIG_NAME, 1000)
    assert read_config(tmp_path) is not None
    monkeypatch.setattr(layout, "MAX_CONFIG_BYTES", 1000)
    assert read_config(tmp_path) is None  # the watcher leaves it alone
    (tmp_path / CONFIG_NAME).write_text("[1, 2]")
    assert read_config(tmp_path) is None  # not an object


def test_the_loader_refuses_a_huge_config_in_one_line(tmp_path, monkeypatch):
    from rnn_tui.engine import checkpoint
    from rnn_tui.engine.errors import CheckpointError

    save_tiny(tmp_path, step=1)
    monkeypatch.setattr(checkpoint, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(CheckpointError, match="larger than") as info:
        checkpoint.load_model(tmp_path, "cpu")
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ layout
def test_runs_are_told_from_folders_and_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / METRICS_NAME).write_text("")
    (tmp_path / "b").mkdir()  # empty: not a run (yet)
    save_tiny(tmp_path / "c", step=1)
    assert is_run(tmp_path / "a") and not is_run(tmp_path / "b") and is_run(tmp_path / "c")
    assert not is_run(tmp_path)
    assert [p.name for p in runs_in(tmp_path)] == ["a", "c"] and runs_in(tmp_path / "missing") == []
    name = new_run_dir("gru", root=tmp_path, now=0)
    assert name.parent == tmp_path and name.name.endswith("-gru") and len(name.name) == len("yyyymmdd-hhmmss-gru")


# ------------------------------------------------------------------ the watcher, no app
def test_the_callback_reports_rows_checkpoints_and_states(tmp_path):
    events = []
    run_dir = tmp_path / "r"
    watcher = Watcher([run_dir], report=events.append)  # no load function: nothing is loaded
    watcher.poll()
    assert [type(e) for e in events] == [RunAdded, StateChanged] and events[1].state == "waiting"
    run = watcher.runs[0]
    assert events[0].run is run

    run_dir.mkdir()
    (run_dir / METRICS_NAME).write_text(line(1) + line(2) + line(3)[:15])
    events.clear()
    watcher.poll()
    rows = [e for e in events if isinstance(e, RowsRead)]
    assert len(rows) == 1 and rows[0].rows[:, 0].tolist() == [1.0, 2.0] and not rows[0].restarted
    assert rows[0].rows.shape == (2, len(COLUMNS)) and not rows[0].rows.flags.writeable
    assert [(e.previous, e.state) for e in events if isinstance(e, StateChanged)] == [("waiting", "live")]
    assert run.take()[1][:, 0].tolist() == [1.0, 2.0]  # kept for a UI timer too

    events.clear()
    watcher.poll()
    assert events == []  # nothing changed, nothing said

    config = save_tiny(run_dir, step=10, steps=10)
    with open(run_dir / METRICS_NAME, "a") as fh:
        fh.write(line(3)[15:] + "".join(line(s) for s in range(4, 11)))
    watcher.poll()
    found = [e for e in events if isinstance(e, CheckpointFound)]
    assert len(found) == 1 and found[0].sha == config["tensors_sha256"] and found[0].step == 10
    assert found[0].directory == run_dir
    assert [e.rows[:, 0].tolist() for e in events if isinstance(e, RowsRead)] == [list(map(float, range(3, 11)))]
    assert [e.state for e in events if isinstance(e, StateChanged)] == ["done"]
    assert not any(isinstance(e, ModelLoaded) for e in events) and watcher.loads == 0


def test_a_run_started_later_in_a_watched_folder_is_reported(tmp_path):
    events = []
    watcher = Watcher([], roots=[tmp_path], report=events.append)
    for _ in range(DISCOVER_EVERY):
        watcher.poll()
    assert events == [] and watcher.runs == []
    (tmp_path / "late").mkdir()
    (tmp_path / "late" / METRICS_NAME).write_text(line(1) + line(2))
    for _ in range(DISCOVER_EVERY):
        watcher.poll()
    added = [e for e in events if isinstance(e, RunAdded)]
    assert [e.run.name for e in added] == ["late"] and watcher.model_run is added[0].run
    assert [e.rows[:, 0].tolist() for e in events if isinstance(e, RowsRead)] == [[1.0, 2.0]]


def test_a_load_that_fails_is_reported_and_the_next_checkpoint_is_loaded(tmp_path):
    events = []
    attempts = []

    def load(directory):
        attempts.append(directory)
        if len(attempts) == 1:
            raise ValueError("torn weights\nsecond line")
        return make_tiny_lm("lstm")

    watcher = Watcher([tmp_path], report=events.append, load=load)
    save_tiny(tmp_path, step=1)
    watcher.poll()
    failed = [e for e in events if isinstance(e, LoadFailed)]
    assert len(failed) == 1 and failed[0].error == "torn weights" and watcher.runs[0].error == "torn weights"
    save_tiny(tmp_path, step=2)  # a new checkpoint is tried at once, whatever the back-off
    watcher.poll()
    loaded = [e for e in events if isinstance(e, ModelLoaded)]
    assert len(loaded) == 1 and loaded[0].model.meta["watch"]["run"] == tmp_path.name
    assert watcher.runs[0].error == "" and watcher.loads == 1


def test_start_and_stop_poll_in_a_thread_of_its_own(tmp_path):
    got = threading.Event()
    seen = []

    def report(event):
        seen.append(threading.current_thread().name)
        if isinstance(event, RowsRead):
            got.set()

    (tmp_path / METRICS_NAME).write_text(line(1))
    watcher = Watcher([tmp_path], report=report, poll_s=0.02).start()
    try:
        assert watcher.running and got.wait(10)
    finally:
        watcher.stop()
    assert not watcher.running and set(seen) == {"rnn-tui watch"}
    polls = watcher.polls
    time.sleep(0.1)
    assert watcher.polls == polls  # stopped means stopped


def test_a_failing_callback_does_not_stop_the_watching(tmp_path):
    def report(event):
        raise RuntimeError("bug in the receiver")

    watcher = Watcher([tmp_path], report=report, poll_s=0.02).start()
    try:
        deadline = time.monotonic() + 10
        while watcher.polls < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert watcher.polls >= 3 and "bug in the receiver" in watcher.error
