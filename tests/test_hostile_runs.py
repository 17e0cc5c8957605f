"""Run directories that are not what they seem, and faults while training writes them: links
that would send writes elsewhere, a new run over one killed before its first checkpoint, a
full disk under metrics.jsonl, two Ctrl-C in a row, metrics.jsonl fsynced at each checkpoint,
and edited training state on --resume.

The real trainer and CLI on tiny models; `rnn-tui train` in a subprocess where signals are
sent to it.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_tui.cli import main
from rnn_tui.cli import train as cli_train
from rnn_tui.engine.checkpoint import config_digest, load_model
from rnn_tui.engine.errors import CheckpointError
from rnn_tui.engine.train import TrainConfig, Trainer
from rnn_tui.runs import metrics as metrics_mod

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--cell", "lstm", "--hidden", "16", "--embed", "8", "--seq-len", "16", "--batch", "4",
        "--eval-every", "0", "--device", "cpu", "--no-tensorboard", "--no-cache"]


def _steps(run: Path) -> list[int]:
    text = (run / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n")  # whole lines only
    return [json.loads(line)["step"] for line in text.splitlines()]


def _one_line(err: str) -> str:
    """The one line an error gave (progress lines, "step 3/20 ...", left out)."""
    lines = [line for line in err.strip().splitlines() if line.strip() and not line.startswith("step ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ links in a run directory
def test_a_dangling_metrics_link_is_refused_and_its_target_never_created(tmp_path, capsys):
    run, target = tmp_path / "run", tmp_path / "elsewhere" / "created.jsonl"
    target.parent.mkdir()
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(target)
    assert main(["train", "grammar", *TINY, "--steps", "3", "--out", str(run)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "metrics.jsonl" in line and "is a symbolic link" in line
    assert not target.exists()


def test_a_best_link_cannot_make_a_save_replace_another_directory(tmp_path, capsys):
    run, victim = tmp_path / "run", tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text("the victim's own file\n")
    run.mkdir()
    (run / "best").symlink_to(victim)
    assert main(["train", "grammar", *TINY[:-4], "--eval-every", "2", "--steps", "3", "--device", "cpu",
                 "--no-tensorboard", "--no-cache", "--out", str(run)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "best is a symbolic link" in line
    assert (victim / "config.json").read_text() == "the victim's own file\n"
    assert sorted(p.name for p in victim.iterdir()) == ["config.json"]


def test_a_tensorboard_link_is_refused(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    run, victim = tmp_path / "run", tmp_path / "victim"
    victim.mkdir()
    run.mkdir()
    (run / "tb").symlink_to(victim)
    assert main(["train", "grammar", *TINY[:-2], "--tensorboard", "--no-cache", "--steps", "2",
                 "--out", str(run)]) == 2
    assert "tb is a symbolic link" in _one_line(capsys.readouterr().err)
    assert list(victim.iterdir()) == []


def test_the_watcher_is_not_blocked_by_fifos_in_a_run_directory(tmp_path):
    import threading

    from rnn_tui.runs import Watcher

    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "metrics.jsonl")
    os.mkfifo(run / "config.json")
    watcher = Watcher([run], load=lambda d: load_model(d, "cpu"))
    thread = threading.Thread(target=watcher.poll, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "a FIFO blocked the watcher"
    assert "FIFO" in watcher.runs[0].error


# ------------------------------------------------------------------ a new run over a dead one
def test_a_new_run_over_one_killed_before_its_first_checkpoint_starts_clean(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    # What a run killed at step 5, before its first checkpoint, leaves: metrics and no config.json.
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 3.0}) + "\n" for s in range(1, 6)))
    assert main(["train", "grammar", *TINY, "--steps", "8", "--out", str(run)]) == 0
    assert _steps(run) == list(range(1, 9))  # was 1-5, then 1-8: steps 1-5 twice
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint (5 lines of metrics.jsonl)" in err
    # A directory that holds a checkpoint is refused, naming it, as before.
    assert main(["train", "grammar", *TINY, "--steps", "8", "--out", str(run)]) == 2
    assert "already holds a run" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------ a full disk
def test_a_full_disk_under_metrics_is_one_line_exit_2_and_no_torn_line(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    real_write = os.write  # only metrics.jsonl is written with os.write
    calls = []

    def disk_fills_at_line_7(fd, data):
        calls.append(len(data))
        if len(calls) == 7:  # half the seventh line goes down, then the disk is full
            return real_write(fd, data[: len(data) // 2])
        if len(calls) > 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(metrics_mod.os, "write", disk_fills_at_line_7)  # (the os module itself)
    code = main(["train", "grammar", *TINY, "--steps", "20", "--save-every", "4", "--out", str(run)])
    monkeypatch.undo()
    assert code == 2  # was: "internal error: OSError: [Errno 28]", exit 1
    line = _one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "metrics.jsonl" in line and "--resume" in line
    assert _steps(run) == [1, 2, 3, 4, 5, 6]  # no torn seventh line
    lm = load_model(run, "cpu")  # the checkpoint of step 4 is intact
    assert lm.meta["metrics"]["step"] == 4
    assert main(["train", "--resume", str(run), "--steps", "8"]) == 0  # and the run goes on
    assert _steps(run) == list(range(1, 9))


# ------------------------------------------------------------------ fsync at each checkpoint
def test_metrics_are_fsynced_before_each_checkpoint_commits(tmp_path, monkeypatch):
    from rnn_tui.engine.corpus import load_corpus

    events: list[str] = []  # "line" for each metrics line written, the file name for each fsync
    real_fsync, real_write = os.fsync, os.write

    def fsync(fd):
        try:
            events.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            pass
        return real_fsync(fd)

    def write(fd, data):  # only metrics.jsonl is written with os.write
        events.append("line")
        return real_write(fd, data)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "write", write)
    cfg = TrainConfig(corpus="grammar", cell="lstm", embed=8, hidden=16, seq_len=16, batch=4, steps=6,
                      save_every=3, eval_every=0, device="cpu")
    Trainer(cfg, run_dir=tmp_path / "run", corpus=load_corpus("grammar", "char", seed=0, size=1500)).run()
    monkeypatch.undo()
    commits = [i for i, name in enumerate(events) if name.startswith(".config.json.")]
    assert len(commits) == 3  # the latest at step 3; at the end best/ and the latest
    assert events.count("line") == 6
    for i in commits:  # every line written before a commit was made durable before it
        before = [e for e in events[:i] if e in ("line", "metrics.jsonl")]
        assert before and before[-1] == "metrics.jsonl", events


# ------------------------------------------------------------------ two Ctrl-C
def test_a_second_interrupt_while_saving_waits_for_the_save(tmp_path, capfd, monkeypatch):
    """Deterministic: the first SIGINT at step 3, the second inside the save it causes."""
    run = tmp_path / "run"
    real_update, real_save = cli_train._TrainProgress.update, Trainer.save

    def update(self, m):
        real_update(self, m)
        if m.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    def save(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C, a moment after the first
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(cli_train._TrainProgress, "update", update)
    monkeypatch.setattr(Trainer, "save", save)
    handler = signal.getsignal(signal.SIGINT)
    assert main(["train", "grammar", *TINY, "--steps", "1000", "--out", str(run)]) == 130
    err = capfd.readouterr().err
    assert "Traceback" not in err and "the checkpoint is being saved" in err
    assert "interrupted at step 3; checkpoint saved" in err
    assert load_model(run, "cpu").meta["metrics"]["step"] == 3
    assert signal.getsignal(signal.SIGINT) is handler  # put back


def _train_then_interrupt_twice(tmp_path: Path, gap: float) -> tuple[int, str]:
    run = tmp_path / f"run-{gap}"
    proc = subprocess.Popen([sys.executable, "-m", "rnn_tui", "train", "grammar", "--steps", "1000000",
                             "--hidden", "256", "--save-every", "0", "--eval-every", "0", "--no-tensorboard",
                             "--no-cache", "--device", "cpu", "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    seen = b""
    try:
        while b"step 1/" not in seen:  # training has started
            ready, _, _ = select.select([proc.stderr], [], [], 60)
            chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
            assert chunk, (seen + proc.stderr.read()).decode()[-2000:]
            seen += chunk
        proc.send_signal(signal.SIGINT)
        select.select([], [], [], gap)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (seen + rest).decode()
    load_model(run, "cpu")  # the checkpoint is whole
    return proc.returncode, err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("gap", [0.002, 0.02, 0.1])
def test_two_quick_ctrl_c_never_print_a_traceback(tmp_path, gap):
    code, err = _train_then_interrupt_twice(tmp_path, gap)
    assert code == 130, err[-1500:]  # not -2 (death by signal)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-1500:]
    assert "checkpoint saved to" in err


# ------------------------------------------------------------------ --resume of an edited run
@pytest.mark.parametrize("field,value", [("step", "12"), ("step", True), ("wall_time", "a while"),
                                         ("best_val_loss", "low"), ("val_step", -3), ("stream", [1, 2])])
def test_non_numeric_resume_fields_are_a_message(tmp_path, capsys, field, value):
    run = tmp_path / "run"
    assert main(["train", "grammar", *TINY, "--steps", "4", "--out", str(run)]) == 0
    path = run / "config.json"
    config = json.loads(path.read_text())
    config["resume"][field] = value
    config["config_sha256"] = config_digest(config)  # edited by something that knows the format
    path.write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "8"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "training state" in line or "position" in line, line


def test_an_optimizer_state_of_the_wrong_shape_is_refused_before_training(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    assert main(["train", "grammar", *TINY, "--steps", "4", "--out", str(run)]) == 0
    state = load_file(str(run / "train_state.safetensors"))
    key = next(k for k in state if k.endswith("exp_avg"))
    state[key] = state[key].flatten()[:3].clone()
    save_file(state, str(run / "train_state.safetensors"), metadata={"format": "pt", "rnn_tui_format": "2"})
    config = json.loads((run / "config.json").read_text())
    import hashlib

    config["resume"]["sha256"] = hashlib.sha256((run / "train_state.safetensors").read_bytes()).hexdigest()
    config["config_sha256"] = config_digest(config)
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "8"]) == 2
    assert "the training state does not fit this run" in _one_line(capsys.readouterr().err)
    with pytest.raises(CheckpointError):
        Trainer.from_run(run)


@pytest.fixture
def fresh_stopping():
    from rnn_tui.cli.interrupts import STOPPING

    STOPPING.clear()
    yield STOPPING
    STOPPING.clear()


def test_the_command_handler_raises_once_then_ignores(fresh_stopping):
    from rnn_tui.cli.interrupts import quiet_after_first

    with pytest.raises(KeyboardInterrupt):
        quiet_after_first(signal.SIGINT, None)
    quiet_after_first(signal.SIGINT, None)  # the process is stopping: no second interrupt
    assert fresh_stopping.is_set()


def test_an_interrupt_training_took_makes_later_ones_quiet(fresh_stopping, capfd):
    """Training's own handler took the first Ctrl-C: one after it has handed the handler back
    (while the command prints its last line) must not raise outside every handler."""
    from rnn_tui.cli.interrupts import Interrupts, quiet_after_first

    with Interrupts() as interrupts, pytest.raises(KeyboardInterrupt):
        interrupts._handle(signal.SIGINT, None)
    interrupts._handle(signal.SIGINT, None)  # a second one during the save only says so
    assert "checkpoint is being saved" in capfd.readouterr().err
    quiet_after_first(signal.SIGINT, None)  # no KeyboardInterrupt
