"""Loading checkpoints that were tampered with, or are being written while we read: integrity
(config_sha256, tensors_sha256, no format downgrade), what the loader reads before it trusts a
size (no FIFO, no /dev/zero, shapes from the safetensors header before anything is built),
a save committing between two reads (no false alarm), temp files a killed save left, and
messages that stay one bounded line whatever they quote.

Real checkpoints of tiny seeded models throughout; a hang is guarded by a thread timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_lm
from safetensors.torch import save as st_save

from rnn_tui.engine import checkpoint
from rnn_tui.engine.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    config_digest,
    load_model,
    load_resume_state,
    save_checkpoint,
)
from rnn_tui.engine.errors import MAX_MESSAGE, CheckpointError
from rnn_tui.runs import Watcher, files
from rnn_tui.runs.layout import MAX_CONFIG_BYTES

ROOT = Path(__file__).resolve().parents[1]
META = {"corpus": "grammar", "level": "char", "train": {"cell": "lstm", "steps": 10}, "metrics": {"step": 10}}


def within(seconds: float, fn, *args):
    """fn(*args) in a daemon thread: its result, or its exception re-raised; fails on a hang."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} hung for {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _save(run: Path, seed: int = 0, **kw) -> Path:
    lm = make_tiny_lm("lstm", seed=seed)
    return save_checkpoint(run, lm.model, lm.vocab, META, **kw)


def _edit(run: Path, rehash: bool, fn) -> None:
    path = run / CONFIG_NAME
    config = json.loads(path.read_text())
    fn(config)
    if rehash and "config_sha256" in config:
        config["config_sha256"] = config_digest(config)
    path.write_text(json.dumps(config))


def _same_model(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa) and a.vocab == b.vocab


# ------------------------------------------------------------------ integrity
def test_swapped_vocabulary_tokens_are_refused(tmp_path):
    run = _save(tmp_path / "r")
    _edit(run, False, lambda c: c["vocab"]["tokens"].__setitem__(slice(0, 2), c["vocab"]["tokens"][1::-1]))
    with pytest.raises(CheckpointError, match=r"was edited after saving: its model, vocab"):
        load_model(run, "cpu")


def test_a_checkpoint_without_its_hashes_is_refused_for_loading_and_resuming(tmp_path):
    from rnn_tui.engine.corpus import load_corpus
    from rnn_tui.engine.train import TrainConfig, Trainer

    cfg = TrainConfig(corpus="grammar", cell="lstm", embed=8, hidden=16, seq_len=16, batch=4, steps=3,
                      eval_every=0, device="cpu")
    corpus = load_corpus("grammar", "char", seed=0, size=1500)
    run = tmp_path / "run"
    Trainer(cfg, run_dir=run, corpus=corpus).run()
    other = tmp_path / "other"
    Trainer(TrainConfig(**{**cfg.to_dict(), "seed": 1}), run_dir=other, corpus=corpus).run()
    # Another run's weights under this run's config, tensors_sha256 dropped (and the config hash
    # recomputed, as a tool that knows the format would): the weights can no longer be checked.
    (run / WEIGHTS_NAME).write_bytes((other / WEIGHTS_NAME).read_bytes())
    _edit(run, True, lambda c: c.pop("tensors_sha256"))
    with pytest.raises(CheckpointError, match="has no valid tensors_sha256"):
        load_model(run, "cpu")
    with pytest.raises(CheckpointError, match="has no valid tensors_sha256"):
        Trainer.from_run(run, corpus=corpus)
    _edit(run, False, lambda c: c.pop("config_sha256"))
    with pytest.raises(CheckpointError, match="has no valid"):
        load_model(run, "cpu")


def test_format_1_checkpoints_still_load_but_cannot_be_passed_off_as_one(tmp_path):
    lm = make_tiny_lm("gru", seed=4)
    run = tmp_path / "old"
    run.mkdir()
    # A checkpoint as rnn-tui wrote it before config_sha256: weights marked format 1.
    blob = st_save({k: v.contiguous() for k, v in lm.model.state_dict().items()},
                   metadata={"format": "pt", "rnn_tui_format": "1"})
    (run / WEIGHTS_NAME).write_bytes(blob)
    config = {"format_version": 1, "model": lm.config.to_dict(), "vocab": lm.vocab.to_dict(), "corpus": "grammar",
              "level": "char", "tensors_sha256": hashlib.sha256(blob).hexdigest()}
    (run / CONFIG_NAME).write_text(json.dumps(config))
    assert _same_model(load_model(run, "cpu"), lm)
    # A format-2 checkpoint relabelled as format 1 to drop its config check: the weights say 2.
    new = _save(tmp_path / "new")
    _edit(new, False, lambda c: (c.__setitem__("format_version", 1), c.pop("config_sha256")))
    with pytest.raises(CheckpointError, match="says format_version 1, but its weights were written by format 2"):
        load_model(new, "cpu")


@pytest.mark.parametrize("name", checkpoint.BUNDLED_MODELS)
def test_bundled_defaults_are_format_2_and_their_weights_unchanged(name):
    directory = checkpoint.DEFAULTS_DIR / name
    config = json.loads((directory / CONFIG_NAME).read_text())
    assert config["format_version"] == 2 and config["config_sha256"] == config_digest(config)
    assert hashlib.sha256((directory / WEIGHTS_NAME).read_bytes()).hexdigest() == config["tensors_sha256"]


# ------------------------------------------------------------------ what is read, and how much
def test_weights_that_are_a_device_or_a_fifo_are_refused_at_once(tmp_path):
    zero = _save(tmp_path / "zero")
    (zero / WEIGHTS_NAME).unlink()
    (zero / WEIGHTS_NAME).symlink_to("/dev/zero")  # read whole, it grew to 23 GB
    with pytest.raises(CheckpointError, match=r"is a device, not a regular file"):
        within(20, load_model, zero, "cpu")
    fifo = _save(tmp_path / "fifo")
    (fifo / WEIGHTS_NAME).unlink()
    os.mkfifo(fifo / WEIGHTS_NAME)  # nobody writes it: a plain open() would wait forever
    with pytest.raises(CheckpointError, match=r"is a FIFO \(named pipe\), not a regular file"):
        within(20, load_model, fifo, "cpu")
    cfg_fifo = _save(tmp_path / "cfg")
    (cfg_fifo / CONFIG_NAME).unlink()
    os.mkfifo(cfg_fifo / CONFIG_NAME)
    with pytest.raises(CheckpointError, match="FIFO"):
        within(20, load_model, cfg_fifo, "cpu")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_config_claiming_a_huge_model_is_refused_before_anything_is_built(tmp_path):
    run = _save(tmp_path / "r")
    # hidden 16384 with every hash valid: it used to build the model first (4-5 GB, 11-17 s).
    _edit(run, True, lambda c: c["model"].update(hidden=16384, layers=4))
    before = _peak_mb()
    with pytest.raises(CheckpointError, match=r"does not match its config: rnn\.weight_ih_l0 has shape \[96, 8\], "
                                              r"the config expects \[65536, 8\]"):
        within(30, load_model, run, "cpu")
    assert _peak_mb() - before < 300  # the weights of the claimed model alone: 17 GB
    # A vocabulary far past any real one is refused from its size, before a Vocab is built.
    run2 = _save(tmp_path / "r2")
    _edit(run2, True, lambda c: (c["vocab"].update(tokens=[f"w{i}" for i in range(2_000_000)], level="word"),
                                 c["model"].update(vocab_size=2_000_000)))
    with pytest.raises(CheckpointError, match=r"vocabulary too large: 2,000,000 tokens"):
        within(30, load_model, run2, "cpu")


def test_a_weights_file_longer_or_shorter_than_its_header_says_is_refused(tmp_path):
    run = _save(tmp_path / "r")
    good = (run / WEIGHTS_NAME).read_bytes()
    (run / WEIGHTS_NAME).write_bytes(good + b"\0" * 1000)
    with pytest.raises(CheckpointError, match="truncated or extended"):
        load_model(run, "cpu")
    # A header length past the file: refused from the first 8 bytes.
    (run / WEIGHTS_NAME).write_bytes((1 << 40).to_bytes(8, "little") + good[8:])
    with pytest.raises(CheckpointError, match="truncated or not safetensors"):
        load_model(run, "cpu")


def test_a_config_json_over_the_limit_is_not_read_whole(tmp_path):
    run = _save(tmp_path / "r")
    with open(run / CONFIG_NAME, "ab") as fh:
        fh.truncate(MAX_CONFIG_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(CheckpointError, match="larger than 32 MiB"):
        load_model(run, "cpu")


def test_error_messages_quote_a_bounded_part_of_what_they_are_given(tmp_path, capsys):
    from rnn_tui.cli import main

    run = _save(tmp_path / "r")
    _edit(run, True, lambda c: c["vocab"]["tokens"].__setitem__(0, "x" * 10_000_000))  # a 10 MB token
    with pytest.raises(CheckpointError) as info:
        load_model(run, "cpu")
    assert "multi-character tokens" in str(info.value) and len(str(info.value)) <= MAX_MESSAGE + 40
    assert main(["info", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and len(err) < 1200


# ------------------------------------------------------------------ a save while we read
def test_a_save_committing_between_two_reads_is_not_reported_as_tampering(tmp_path, monkeypatch):
    run = _save(tmp_path / "r", seed=0)
    newer = make_tiny_lm("lstm", seed=1)
    real = checkpoint.read_header
    saved = []

    def save_in_between(path):  # the loader has read config.json; now a save commits a new one
        if not saved:
            saved.append(save_checkpoint(run, newer.model, newer.vocab, META))
        return real(path)

    monkeypatch.setattr(checkpoint, "read_header", save_in_between)
    lm = load_model(run, "cpu")  # was: "does not match the sha256 recorded in config.json"
    assert saved and _same_model(lm, newer)
    assert lm.meta["tensors_sha256"] == json.loads((run / CONFIG_NAME).read_text())["tensors_sha256"]
    # A mismatch that stays while config.json stays the same is still one.
    monkeypatch.setattr(checkpoint, "read_header", real)
    (run / WEIGHTS_NAME).write_bytes(st_save({k: v.contiguous() for k, v in
                                              make_tiny_lm("lstm", seed=2).model.state_dict().items()}))
    with pytest.raises(CheckpointError, match="does not match the sha256 recorded"):
        load_model(run, "cpu")


def test_loads_and_the_watcher_never_see_a_false_alarm_while_a_run_saves_every_step(tmp_path):
    run = _save(tmp_path / "r", resume_tensors={"x": torch.zeros(3)}, resume_info={"step": 0})
    models = [make_tiny_lm("lstm", seed=s) for s in range(3)]
    stop, saves = threading.Event(), []

    def saver():
        i = 0
        while not stop.is_set():
            lm = models[i % 3]
            save_checkpoint(run, lm.model, lm.vocab, {**META, "metrics": {"step": i}},
                            resume_tensors={"x": torch.zeros(3)}, resume_info={"step": i})
            saves.append(i)
            i += 1

    errors = []
    watcher = Watcher([run], load=lambda d: load_model(d, "cpu"),
                      report=lambda e: errors.append(e.error) if hasattr(e, "error") else None)
    thread = threading.Thread(target=saver, daemon=True)
    thread.start()
    try:
        for _ in range(150):
            try:
                load_model(run, "cpu")
                load_resume_state(run)
            except CheckpointError as exc:
                errors.append(str(exc))
            watcher.poll()
            watcher.shown = None  # load again at every poll
            if watcher.runs[0].error:
                errors.append(watcher.runs[0].error)
    finally:
        stop.set()
        thread.join(30)
    assert len(saves) > 20 and errors == [], errors[:3]


# ------------------------------------------------------------------ what a killed save left
def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_temp_files_of_a_save_killed_midway_are_removed_by_the_next_save_or_load(tmp_path):
    run = _save(tmp_path / "r")
    # A save killed for real inside its atomic write: fsync never returns.
    code = (f"import os, sys, time; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
            "from conftest import make_tiny_lm\nfrom rnn_tui.engine.checkpoint import save_checkpoint\n"
            "os.fsync = lambda fd: (print('in save', flush=True), time.sleep(60))\n"
            f"lm = make_tiny_lm('lstm', seed=3)\nsave_checkpoint({str(run)!r}, lm.model, lm.vocab)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"in save"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    left = sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp"))
    assert len(left) == 1 and f"-{proc.pid}." in left[0]
    host = files._HOST
    live = run / f".config.json.{host}-{os.getppid()}.0123456789ab.tmp"  # a live process's save: kept
    live.write_bytes(b"x")
    dead = run / f".config.json.{host}-{_dead_pid()}.0123456789ab.tmp"
    dead.write_bytes(b"x")
    elsewhere = run / ".config.json.otherhost-1.0123456789ab.tmp"  # another machine's: not ours to judge
    elsewhere.write_bytes(b"x")
    old = run / ".model.next.safetensors.0123456789ab.tmp"  # an older rnn-tui's, two hours old
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200,) * 2)
    load_model(run, "cpu")
    assert sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp")) == sorted([live.name, elsewhere.name])
    best = _save(tmp_path / "r", name="best")
    stale = best / f".config.json.{host}-{_dead_pid()}.0123456789ab.tmp"
    stale.write_bytes(b"x")
    _save(tmp_path / "r", name="best")
    assert not stale.exists()


async def test_the_tui_given_a_fifo_for_weights_says_so_and_quits(tmp_path):
    import asyncio

    from pilot_helpers import notes, settle

    from rnn_tui.app import RnnTuiApp

    fifo = _save(tmp_path / "fifo")
    (fifo / WEIGHTS_NAME).unlink()
    os.mkfifo(fifo / WEIGHTS_NAME)
    app = RnnTuiApp(model=str(fifo), cursor_blink=False, device="cpu")

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.engine_ready and app.lm is None  # the boot worker came back
            assert any("FIFO" in n for n in notes(app)), notes(app)
            await pilot.press("ctrl+q")

    await asyncio.wait_for(run(), 60)  # was: the boot worker blocked in read(), ctrl+q left it alive
    assert not app.is_running
