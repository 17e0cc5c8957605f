"""Long runs on remote machines: resume, periodic checkpoints, the corpus cache, TensorBoard,
DDP (gloo, two processes) and bf16 autocast -- all on the CPU, with tiny models.

Deselect the multi-process DDP test with `-k "not ddp"` (or RNN_TUI_SKIP_DDP=1).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_tui.cli import main
from rnn_tui.engine import checkpoint
from rnn_tui.engine.checkpoint import STATE_NAME, load_model, load_resume_state
from rnn_tui.engine.resume import optimizer_state_from_safe, optimizer_state_to_safe
from rnn_tui.engine.corpus import files as corpus_mod, load_corpus
from rnn_tui.engine.errors import CheckpointError, ConfigError
from rnn_tui.engine.train import TrainConfig, Trainer
from rnn_tui.runs import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--cell", "lstm", "--hidden", "16", "--embed", "8", "--seq-len", "16", "--batch", "8",
        "--eval-every", "10", "--device", "cpu", "--no-tensorboard", "--no-cache"]
TINY_CFG = dict(cell="lstm", embed=8, hidden=16, seq_len=16, batch=8, eval_every=10, eval_batches=2,
                device="cpu")


@pytest.fixture(scope="module")
def small_grammar():
    return load_corpus("grammar", "char", seed=0, size=1500)


def _weights(spec) -> dict[str, torch.Tensor]:
    return load_model(spec, "cpu").model.state_dict()


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ resume
def test_resume_continues_steps_optimizer_and_loss_curve(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "grammar", *TINY, "--steps", "40", "--save-every", "7", "--out", str(straight)]) == 0
    assert main(["train", "grammar", *TINY, "--steps", "20", "--save-every", "7", "--out", str(split)]) == 0
    first = load_resume_state(split)[2]
    assert first["step"] == 20 and first["carry"] == "h,c" and first["optimizer_class"] == "Adam"
    assert main(["train", "--resume", str(split), "--steps", "40"]) == 0
    err = capsys.readouterr().err
    assert f"resuming {split} at step 20 of 40" in err

    # The same weights as one 40-step run: the Adam moments, the stream position and the
    # carried hidden state all came back.
    assert _max_diff(_weights(split), _weights(straight)) < 1e-6
    records = _metrics(split)
    assert [r["step"] for r in records] == list(range(1, 41))
    ref = _metrics(straight)
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(records, ref)) < 1e-5
    assert [r["val_loss"] is not None for r in records] == [r["val_loss"] is not None for r in ref]
    config = json.loads((split / "config.json").read_text())
    assert config["train"]["steps"] == 40 and config["resume"]["step"] == 40
    assert config["metrics"]["wall_time_s"] >= first["wall_time"]
    assert (split / "best" / "config.json").is_file() and "resume" not in json.loads(
        (split / "best" / "config.json").read_text())

    # A run that is done says so and changes nothing; model-defining flags cannot change.
    assert main(["train", "--resume", str(split)]) == 0
    assert "already at step 40 of 40" in capsys.readouterr().err
    assert len(_metrics(split)) == 40
    assert main(["train", "--resume", str(split), "--hidden", "32", "--steps", "50"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hidden (the run has 16, asked 32) cannot change" in err
    # A new run into the same directory would mix two runs: refused.
    assert main(["train", "grammar", *TINY, "--steps", "5", "--out", str(split)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_after_a_crash_drops_metrics_past_the_checkpoint(small_grammar, tmp_path):
    cfg = TrainConfig(steps=20, **TINY_CFG)
    Trainer(cfg, run_dir=tmp_path, corpus=small_grammar).run()
    # The process went on past its last save, then died mid-line.
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 21, "loss": 1.0}\n{"step": 22, "loss": 1.0}\n{"step": 2')
    records, cursor, restarted = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records][-2:] == [21, 22] and not restarted  # the torn line is not read
    trainer = Trainer.from_run(tmp_path, overrides={"steps": 30}, corpus=small_grammar)
    assert trainer.step == 20
    assert [r["step"] for r in _metrics(tmp_path)] == list(range(1, 21))
    trainer.run()
    assert [r["step"] for r in _metrics(tmp_path)] == list(range(1, 31))
    more, cursor, restarted = read_metrics(tmp_path / "metrics.jsonl", cursor)
    assert restarted and [r["step"] for r in more] == list(range(1, 31))  # rewritten: from the top
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 31}\n{"step"')
    more, cursor, restarted = read_metrics(tmp_path / "metrics.jsonl", cursor)
    assert not restarted and [r["step"] for r in more] == [31]


def test_resume_refuses_what_it_cannot_continue(small_grammar, tmp_path):
    Trainer(TrainConfig(steps=3, **TINY_CFG), run_dir=tmp_path, corpus=small_grammar).run()
    with pytest.raises(CheckpointError, match="no training state to resume from"):
        Trainer.from_run(tmp_path / "best")
    with pytest.raises(ConfigError, match=r"cell \(the run has 'lstm', asked 'gru'\) cannot change"):
        Trainer.from_run(tmp_path, overrides={"cell": "gru"})
    other = tmp_path / "other.txt"
    other.write_text("THE CAT SAT ON THE MAT. " * 100)
    with pytest.raises(ConfigError, match="vocabulary"):
        Trainer.from_run(tmp_path, overrides={"corpus": str(other)})


# ------------------------------------------------------------------ checkpoints
def test_latest_and_best_checkpoints_hold_weights_optimizer_and_step(small_grammar, tmp_path):
    trainer = Trainer(TrainConfig(steps=12, save_every=5, **TINY_CFG), run_dir=tmp_path, corpus=small_grammar)
    saved_steps = []
    real = checkpoint.save_checkpoint

    def spy(run_dir, model, vocab, meta=None, name="model", **kw):
        if name == "model":
            saved_steps.append(kw["resume_info"]["step"])
        return real(run_dir, model, vocab, meta, name, **kw)

    import rnn_tui.engine.train as train_mod

    train_mod.save_checkpoint, orig = spy, train_mod.save_checkpoint
    try:
        trainer.run()
    finally:
        train_mod.save_checkpoint = orig
    assert saved_steps == [5, 10, 12]  # every save_every steps, and at the end
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best", "config.json", "metrics.jsonl", "model.safetensors", STATE_NAME]
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["config.json", "model.safetensors"]
    assert _max_diff(_weights(tmp_path), trainer.model.state_dict()) == 0
    assert load_model(tmp_path / "best", "cpu").meta["metrics"]["best_val_loss"] == trainer.best_val_loss
    _, tensors, info = load_resume_state(tmp_path)
    state = optimizer_state_from_safe(tensors, info["optimizer"])
    live = trainer.optimizer.state_dict()
    assert state["param_groups"] == live["param_groups"]
    for index, entry in live["state"].items():
        for key, value in entry.items():
            assert torch.equal(state["state"][index][key], value), (index, key)
    text = (tmp_path / "config.json").read_text()
    assert "betas" in text and "exp_avg" not in text  # hyperparameters in JSON, tensors elsewhere


def test_optimizer_state_round_trip_without_pickle():
    p = torch.nn.Parameter(torch.randn(3, 2))
    for opt in (torch.optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([p], lr=0.1),
                torch.optim.AdamW([p], lr=1e-3, betas=(0.8, 0.95))):
        p.grad = torch.ones_like(p)
        opt.step()
        tensors, info = optimizer_state_to_safe(opt.state_dict())
        info = json.loads(json.dumps(info))
        again = optimizer_state_from_safe(tensors, info)
        opt.load_state_dict(again)  # loads as torch would from its own state_dict
        assert again["param_groups"] == opt.state_dict()["param_groups"]


def test_a_crash_after_the_commit_point_still_resumes(small_grammar, tmp_path, monkeypatch):
    trainer = Trainer(TrainConfig(steps=4, **TINY_CFG), run_dir=tmp_path, corpus=small_grammar)
    trainer.run()
    trainer.run(until=6)  # the next save crashes between the commit and the final renames
    real_replace = os.replace

    def crash(src, dst):
        if Path(src).name == checkpoint.NEXT_STATE_NAME:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(CheckpointError):
        trainer.save()
    monkeypatch.undo()
    assert (tmp_path / checkpoint.NEXT_STATE_NAME).exists()
    assert load_resume_state(tmp_path)[2]["step"] == 6  # the committed state, under its "next" name
    trainer.save()  # the next save finishes the crashed one first, then writes its own
    assert not list(tmp_path.glob("*.next.*")) and not list(tmp_path.glob(".*.tmp"))
    assert Trainer.from_run(tmp_path, corpus=small_grammar).step == 6


# ------------------------------------------------------------------ deferred sync (log_every)
def test_log_every_keeps_the_loss_on_the_device_between_logs(small_grammar):
    every = Trainer(TrainConfig(steps=10, **TINY_CFG), corpus=small_grammar)
    every.run()
    batched = Trainer(TrainConfig(steps=10, log_every=5, **TINY_CFG), corpus=small_grammar)
    batched.run()
    assert [m.step for m in batched.history] == [5, 10]
    assert _max_diff(batched.model.state_dict(), every.model.state_dict()) == 0
    for m, steps in zip(batched.history, (every.history[:5], every.history[5:])):
        assert m.loss == pytest.approx(sum(s.loss for s in steps) / 5, rel=1e-6)
        assert m.grad_norm == pytest.approx(sum(s.grad_norm for s in steps) / 5, rel=1e-6)


def test_log_every_nan_guard_restores_the_last_good_snapshot(small_grammar):
    trainer = Trainer(TrainConfig(steps=40, log_every=5, snapshot_every=10, **TINY_CFG), corpus=small_grammar)
    trainer.run(until=10)
    at_10 = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.model.head.bias.register_hook(lambda g: g * float("nan"))
    result = trainer.run()
    # Step 11's update was applied unchecked (NaN); the check at step 15 finds it.
    assert result.diverged and result.kept_step == 10 and trainer.step == 10
    assert result.stopped_reason.startswith("gradient norm became nan at step 11")
    assert _max_diff(trainer.model.state_dict(), at_10) == 0


# ------------------------------------------------------------------ corpus cache
def test_corpus_cache_hit_miss_and_invalidation(tmp_path, monkeypatch):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400 + "Zebras é\n")
    cache = tmp_path / "cache"
    calls = []
    real = corpus_mod._encode_file
    monkeypatch.setattr(corpus_mod, "_encode_file", lambda *a: calls.append(a[1]) or real(*a))

    fresh = load_corpus(str(text), "char")  # the uncached reference
    first = load_corpus(str(text), "char", cache_dir=cache)
    assert calls == ["char"] and len(list(cache.glob("*.npy"))) == 1 and len(list(cache.glob("*.json"))) == 1
    again = load_corpus(str(text), "char", cache_dir=cache)
    assert calls == ["char"]  # a hit: not tokenised again
    assert isinstance(again.train, np.memmap) and again.train.dtype == np.uint8
    for c in (first, again):
        assert c.vocab == fresh.vocab and c.examples == fresh.examples and c.name == fresh.name
        assert np.array_equal(c.train, fresh.train) and np.array_equal(c.val, fresh.val)
    # Other levels and size caps are other entries.
    word = load_corpus(str(text), "word", cache_dir=cache)
    assert calls == ["char", "word"]
    assert np.array_equal(word.train, load_corpus(str(text), "word").train)

    # Touching the file (a new mtime) invalidates the entry; the stale array is removed.
    st = text.stat()
    os.utime(text, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    load_corpus(str(text), "char", cache_dir=cache)
    assert calls == ["char", "word", "char"] and len(list(cache.glob("*.npy"))) == 2
    # New content: a new vocabulary, from the new text.
    text.write_text("abcabcabc " * 300)
    changed = load_corpus(str(text), "char", cache_dir=cache)
    assert calls[-1] == "char" and len(calls) == 4 and changed.vocab.tokens == (" ", "a", "b", "c")
    # A half-written sidecar is a miss, never an error.
    for sidecar in cache.glob("*.json"):
        sidecar.write_text(sidecar.read_text()[:30])
    assert np.array_equal(load_corpus(str(text), "char", cache_dir=cache).train, changed.train)
    assert len(calls) == 5


def test_trainer_trains_from_a_cached_corpus(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 200)
    cfg = TrainConfig(corpus=str(text), steps=3, **TINY_CFG)
    Trainer(cfg, cache_dir=tmp_path / "c").run()
    trainer = Trainer(cfg, cache_dir=tmp_path / "c")  # the memory-mapped uint8 ids
    assert isinstance(trainer.corpus.train, np.memmap)
    assert trainer.run().steps_done == 3


# ------------------------------------------------------------------ TensorBoard
def test_tensorboard_event_files(small_grammar, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(TrainConfig(steps=6, eval_every=3, **{k: v for k, v in TINY_CFG.items() if k != "eval_every"}),
                      run_dir=tmp_path, corpus=small_grammar, tensorboard=True)
    assert trainer.notes == []
    trainer.run()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "bits", "grad_norm", "lr", "tokens_per_s", "val_loss"} <= tags
    assert [e.step for e in events.Scalars("loss")] == list(range(1, 7))
    assert [e.step for e in events.Scalars("val_loss")] == [3, 6]
    assert events.Scalars("loss")[0].value == pytest.approx(trainer.history[0].loss, rel=1e-6)


def test_tensorboard_missing_is_said_once_and_training_goes_on(small_grammar, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: not installed
    quiet = Trainer(TrainConfig(steps=2, **TINY_CFG), run_dir=tmp_path / "a", corpus=small_grammar,
                    tensorboard=None)
    assert quiet.notes == []  # auto: silently off
    assert main(["train", "grammar", *TINY[:-2], "--steps", "3", "--tensorboard", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert err.count("tensorboard is not installed") == 1 and "pip install 'rnn-tui[tensorboard]'" in err
    assert not (tmp_path / "b" / "tb").exists() and len(_metrics(tmp_path / "b")) == 3


# ------------------------------------------------------------------ bf16 autocast
def test_amp_on_cpu_runs_bf16_autocast(small_grammar, tmp_path, capsys):
    plain = Trainer(TrainConfig(steps=6, **TINY_CFG), corpus=small_grammar)
    plain.run()
    amp = Trainer(TrainConfig(steps=6, amp=True, **TINY_CFG), run_dir=tmp_path / "amp", corpus=small_grammar)
    assert any("--amp on the CPU" in n for n in amp.notes)
    dtypes, rnn_dtypes = [], []
    amp.model.head.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
    amp.model.rnn.register_forward_hook(lambda mod, inp, out: rnn_dtypes.append(out[0].dtype))
    result = amp.run()
    assert not result.diverged and all(math.isfinite(m.loss) for m in amp.history)
    assert torch.bfloat16 in dtypes  # the head ran under autocast
    assert set(rnn_dtypes) == {torch.float32}  # the recurrence did not (see _recurrence_in_float32)
    assert all(p.dtype == torch.float32 for p in amp.model.parameters())  # weights stay float32
    assert amp.history[-1].loss != plain.history[-1].loss
    assert abs(amp.history[-1].loss - plain.history[-1].loss) < 0.1
    # The run resumes (with or without autocast) and the CLI says what --amp does on a CPU.
    assert Trainer.from_run(tmp_path / "amp", overrides={"steps": 8, "amp": False}, corpus=small_grammar).run().steps_done == 8
    assert main(["train", "grammar", *TINY, "--steps", "2", "--amp", "--out", str(tmp_path / "cli")]) == 0
    assert "--amp on the CPU" in capsys.readouterr().err


# ------------------------------------------------------------------ DDP
def test_ddp_needs_torchrun_and_an_even_batch(capsys, monkeypatch, tmp_path):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train", "grammar", "--ddp", "--steps", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "torchrun --nproc_per_node=N -m rnn_tui train" in err
    from rnn_tui.engine.distributed import DistContext

    ctx = DistContext(rank=1, world_size=4, local_rank=1, backend="gloo", device=torch.device("cpu"))
    assert ctx.rows(32) == slice(8, 16)
    with pytest.raises(ConfigError, match="--batch 30 does not split evenly over 4 processes"):
        ctx.check_batch(30)


@pytest.mark.skipif(os.environ.get("RNN_TUI_SKIP_DDP") == "1", reason="RNN_TUI_SKIP_DDP=1")
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without torch.distributed")
def test_ddp_gloo_two_processes_match_one_process(tmp_path):
    """torchrun, 2 CPU processes (gloo), 4 rows each == 1 process with the batch of 8."""
    out = tmp_path / "ddp"
    flags = ["--cell", "lstm", "--hidden", "16", "--embed", "8", "--seq-len", "16", "--batch", "8",
             "--optimizer", "sgd", "--lr", "0.5", "--steps", "6", "--eval-every", "3", "--save-every", "4",
             "--device", "cpu", "--no-tensorboard", "--no-cache"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "rnn_tui", "train", "grammar", *flags, "--ddp", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("saved ") == 1  # rank 0 alone reports and writes

    cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text())["train"])
    assert cfg.batch == 8 and cfg.optimizer == "sgd"
    one = Trainer(cfg, corpus=load_corpus("grammar", "char", seed=0))
    one.run()
    assert _max_diff(_weights(out), one.model.state_dict()) < 1e-5
    records = _metrics(out)
    assert [r["step"] for r in records] == list(range(1, 7))  # one writer: no duplicate lines
    assert max(abs(r["loss"] - m.loss) for r, m in zip(records, one.history)) < 1e-5
    # The saved carried state is the whole global batch, gathered from both ranks.
    _, tensors, info = load_resume_state(out)
    assert info["world_size"] == 2 and tuple(tensors["carry.h"].shape) == (1, 8, 16)
    assert torch.allclose(tensors["carry.h"], one._state[0], atol=1e-5)
    print(f"DDP test: torchrun + 2 gloo ranks took {elapsed:.1f} s")


# ------------------------------------------------------------------ bench
def test_bench_encode_rows_and_table():
    from rnn_tui.engine.bench import bench_encode, format_table, parse_sizes

    rows = bench_encode(mb=0.25, levels=("char",), log=lambda _: None)
    assert [r["what"] for r in rows] == ["encode + cache write", "cache hit (mmap)"]
    assert all(r["kind"] == "encode" and r["mb_s"] > 0 and r["tokens"] == 2**18 for r in rows)
    table = format_table(rows)
    assert "Corpus encoding" in table and "MB/s" in table
    assert parse_sizes("256x64, 1024x256") == [(256, 64), (1024, 256)]
    with pytest.raises(ConfigError, match="HIDDENxBATCH"):
        parse_sizes("256")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_bench_cuda_without_cuda_is_one_line(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CUDA is not available" in err


def test_bench_inspect_row_and_table():
    from rnn_tui.engine.bench import bench_inspect, format_table

    (row,) = bench_inspect(mb=0.05, repeat=1, log=lambda _: None)
    assert row["kind"] == "inspect" and row["tokens"] > 40_000 and row["units"] >= 1
    assert row["search_ms"] > 0 and row["encode_s"] > 0 and isinstance(row["matches"], int)
    assert "Unit inspector" in format_table([row])
