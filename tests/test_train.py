"""The Trainer: it learns, logs, pauses, stops, resumes, clips, and survives divergence."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time

import pytest
import torch

from rnn_tui.engine.checkpoint import load_model
from rnn_tui.engine.corpus import load_corpus
from rnn_tui.engine.errors import ConfigError
from rnn_tui.engine.train import StepMetrics, TrainConfig, Trainer

# Small models on a small grammar corpus: every test here runs in well under a second.
TINY = dict(cell="gru", embed=8, hidden=16, seq_len=16, batch=8, eval_every=10, eval_batches=2)


@pytest.fixture(scope="module")
def grammar():
    return load_corpus("grammar", "char", seed=0)


@pytest.fixture(scope="module")
def small_grammar():
    return load_corpus("grammar", "char", seed=0, size=1500)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(model, params) -> bool:
    return all(torch.equal(v, params[k]) for k, v in model.state_dict().items())


# ------------------------------------------------------------------ it learns
def test_lstm_learns_the_grammar(grammar):
    # Measured on 2 CPU cores (torch 2.13): validation loss 0.353 nats after 200 steps
    # (0.717 / 0.422 / 0.355 at steps 50 / 100 / 150), ~0.65 s. A uniform guess over the
    # 28 characters costs ln 28 = 3.33 nats; the bound leaves a wide margin for other BLAS builds.
    cfg = TrainConfig(cell="lstm", hidden=64, embed=32, seq_len=32, batch=16, lr=1e-2, steps=200,
                      eval_every=50, seed=0, device="cpu")
    trainer = Trainer(cfg, corpus=grammar)
    result = trainer.run()
    assert result.stopped_reason is None and not result.diverged
    assert result.steps_done == trainer.step == 200
    assert result.val_loss < 0.6
    assert result.best_val_loss <= result.val_loss
    vals = [m.val_loss for m in trainer.history if m.val_loss is not None]
    assert len(vals) == 4 and vals[-1] < vals[0]


# ------------------------------------------------------------------ metrics
def test_metrics_jsonl_and_checkpoints(small_grammar, tmp_path):
    run_dir = tmp_path / "run"
    seen: list[StepMetrics] = []
    cfg = TrainConfig(steps=25, device="cpu", **TINY)
    trainer = Trainer(cfg, run_dir=run_dir, corpus=small_grammar, on_metrics=seen.append)
    result = trainer.run()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == list(range(1, 26))
    assert seen == trainer.history and len(seen) == 25
    fields = {"step", "epoch", "loss", "bits", "ppl", "grad_norm", "clipped", "lr", "tokens_per_s",
              "wall_time", "val_loss", "val_bits", "val_ppl"}
    for r, m in zip(records, trainer.history):
        assert set(r) == fields
        assert r == json.loads(m.to_json())
        assert math.isclose(r["bits"], r["loss"] / math.log(2))
        assert math.isclose(r["ppl"], math.exp(r["loss"]))
        assert r["tokens_per_s"] > 0 and r["grad_norm"] > 0 and r["lr"] == cfg.lr
        assert (r["val_loss"] is not None) == (r["step"] % 10 == 0 or r["step"] == 25)  # and the last
        if r["val_loss"] is not None:
            assert math.isclose(r["val_bits"], r["val_loss"] / math.log(2))
    assert records[-1]["epoch"] > records[0]["epoch"] > 0
    assert all(b["wall_time"] >= a["wall_time"] for a, b in zip(records, records[1:]))

    # The run directory: the final checkpoint, and best/ by validation loss.
    lm = load_model(run_dir, "cpu")
    assert _same(lm.model, {k: v.cpu() for k, v in trainer.model.state_dict().items()})
    assert lm.meta["metrics"]["step"] == 25
    assert lm.meta["train"] == cfg.to_dict()
    assert lm.meta["corpus"] == "grammar" and lm.categories["cat"] == "NOUN_ANIMAL"
    best = load_model(run_dir / "best", "cpu")
    assert best.meta["metrics"]["best_val_loss"] == pytest.approx(result.best_val_loss)
    assert min(m.val_loss for m in trainer.history if m.val_loss is not None) == pytest.approx(result.best_val_loss)
    assert records[-1]["val_loss"] == pytest.approx(result.val_loss)  # the curve ends on what info reports


def test_log_every(small_grammar, tmp_path):
    cfg = TrainConfig(steps=23, log_every=5, device="cpu", **TINY)
    trainer = Trainer(cfg, run_dir=tmp_path, corpus=small_grammar)
    trainer.run()
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 23]  # multiples of log_every, validation steps, the last step
    # tokens/s of a logged step covers all the steps since the previous one.
    assert all(m.tokens_per_s > 0 for m in trainer.history)


# ------------------------------------------------------------------ control from another thread
def _start(trainer, **kwargs):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", trainer.run(**kwargs)), daemon=True)
    thread.start()
    return thread, box


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_pause_resume_stop(small_grammar):
    cfg = TrainConfig(steps=10**6, eval_every=0, device="cpu",
                      **{k: v for k, v in TINY.items() if k != "eval_every"})
    trainer = Trainer(cfg, corpus=small_grammar)
    t_start = time.perf_counter()
    thread, box = _start(trainer)
    _wait_for(lambda: trainer.step >= 5)
    trainer.pause()
    assert trainer.is_paused
    time.sleep(0.05)  # let a step in flight finish
    held = trainer.step
    time.sleep(0.3)
    assert trainer.step == held, "steps were taken while paused"
    lm = trainer.snapshot()  # safe while paused: a CPU copy equal to the live weights
    assert lm.device.type == "cpu" and not lm.model.training
    assert _same(lm.model, {k: v.cpu() for k, v in trainer.model.state_dict().items()})
    assert lm.meta["metrics"]["step"] == held and lm.meta["vocab"] == trainer.vocab.to_dict()
    trainer.resume()
    _wait_for(lambda: trainer.step >= held + 5)
    snap = trainer.snapshot()  # while running
    with torch.no_grad():
        snap.model.head.weight.zero_()  # a copy: the trainer's model is untouched
    assert not torch.equal(trainer.model.head.weight, snap.model.head.weight)
    trainer.request_stop()
    thread.join(10)
    elapsed = time.perf_counter() - t_start
    assert not thread.is_alive()
    result = box["result"]
    assert result.stopped_reason == "stopped by user" and not result.diverged
    assert held + 5 <= result.steps_done < 10**6
    # the training clock leaves the pause (>= 0.35 s) out
    assert trainer.history[-1].wall_time < elapsed - 0.3


def test_external_stop_event_wakes_a_paused_trainer(small_grammar):
    trainer = Trainer(TrainConfig(steps=10**6, device="cpu", **TINY), corpus=small_grammar)
    trainer.pause()
    stop = threading.Event()
    thread, box = _start(trainer, stop=stop)
    time.sleep(0.15)
    assert trainer.step == 0
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and box["result"].stopped_reason == "stopped by user"


def test_resume_continues_the_step_count_exactly(small_grammar):
    cfg = TrainConfig(steps=20, device="cpu", **TINY)
    straight = Trainer(cfg, corpus=small_grammar)
    straight.run()

    stop_at_7 = Trainer(cfg, corpus=small_grammar)
    stop_at_7.on_metrics = lambda m: m.step == 7 and stop_at_7.request_stop()
    first = stop_at_7.run()
    assert first.steps_done == 7 and first.stopped_reason == "stopped by user"
    stop_at_7.on_metrics = None
    second = stop_at_7.run()
    assert second.steps_done == 20 and second.stopped_reason is None
    assert [m.step for m in stop_at_7.history] == list(range(1, 21))
    # Same optimizer state and carried hidden state: the very same weights as one run.
    assert _same(stop_at_7.model, _params(straight.model))
    assert stop_at_7.run().steps_done == 20  # nothing left to do
    assert stop_at_7.run(until=22).steps_done == 22  # a larger budget continues


# ------------------------------------------------------------------ clipping
def test_clip_reports_the_pre_clip_norm(small_grammar):
    after: list[float] = []

    def grads_after_clip(m):
        # on_metrics runs between steps: the grads are still those the optimizer just used
        norms = [p.grad.norm() for p in trainer.params if p.grad is not None]
        after.append(torch.linalg.vector_norm(torch.stack(norms)).item())

    trainer = Trainer(TrainConfig(steps=5, clip=0.01, device="cpu", **TINY), corpus=small_grammar,
                      on_metrics=grads_after_clip)
    trainer.run()
    assert all(m.grad_norm > 0.01 and m.clipped for m in trainer.history)
    assert after == pytest.approx([0.01] * 5, rel=1e-3)

    unclipped = Trainer(TrainConfig(steps=3, clip=0, device="cpu", **TINY), corpus=small_grammar)
    unclipped.run()
    assert all(m.grad_norm > 0 and not m.clipped for m in unclipped.history)


# ------------------------------------------------------------------ divergence and OOM
def test_divergence_stops_and_keeps_finite_weights(small_grammar, tmp_path):
    cfg = TrainConfig(cell="rnn", embed=8, hidden=16, seq_len=16, batch=8, optimizer="sgd", lr=1e6,
                      clip=0, steps=200, device="cpu")
    trainer = Trainer(cfg, corpus=small_grammar, run_dir=tmp_path)
    initial = _params(trainer.model)
    result = trainer.run()
    assert result.diverged
    # Step 1 is fine; its update (lr=1e6) makes step 2's loss ~1e5 nats: perplexity inf.
    assert "inf" in result.stopped_reason and "at step 2 (lr=1e+06)" in result.stopped_reason
    assert "weights from step 0 were kept" in result.stopped_reason and result.kept_step == 0
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert _same(trainer.model, initial)  # the weights whose loss was finite
    assert trainer.step == 0
    assert _same(load_model(tmp_path, "cpu").model, initial)  # and they are what the run dir holds


def test_divergence_mid_run_restores_the_last_snapshot(small_grammar):
    cfg = TrainConfig(cell="rnn", embed=8, hidden=16, seq_len=16, batch=8, optimizer="sgd", lr=0.5,
                      steps=30, snapshot_every=10, device="cpu")
    trainer = Trainer(cfg, corpus=small_grammar)
    assert not trainer.run().diverged
    at_30 = _params(trainer.model)
    trainer.optimizer.param_groups[0]["lr"] = 3e38  # one update takes the weights past float32
    result = trainer.run(until=60)
    assert result.diverged and result.kept_step == 30
    assert "at step 32 (lr=3e+38)" in result.stopped_reason
    assert "weights from step 30 were kept" in result.stopped_reason
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert _same(trainer.model, at_30)


def test_bad_gradient_skips_the_step_and_keeps_current_weights(small_grammar):
    trainer = Trainer(TrainConfig(steps=20, device="cpu", **TINY), corpus=small_grammar)
    trainer.run(until=12)
    at_12 = _params(trainer.model)
    trainer.model.head.bias.register_hook(lambda g: g * float("nan"))
    result = trainer.run()
    assert result.diverged and result.kept_step == 12
    assert result.stopped_reason.startswith("gradient norm became nan at step 13")
    assert _same(trainer.model, at_12)  # the loss was finite: the weights are good; no step taken


def test_out_of_memory_stops_with_a_clear_reason(small_grammar, monkeypatch):
    trainer = Trainer(TrainConfig(steps=5, device="cpu", **TINY), corpus=small_grammar)

    def oom():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(trainer, "_train_step", oom)
    result = trainer.run()
    assert result.out_of_memory and not result.diverged and result.steps_done == 0
    assert "out of memory" in result.stopped_reason and "--batch" in result.stopped_reason


def test_echo_state_keeps_its_reservoir_frozen(small_grammar):
    trainer = Trainer(TrainConfig(init="echo", steps=5, device="cpu", **TINY), corpus=small_grammar)
    w_hh = trainer.model.rnn.weight_hh_l0.detach().clone()
    head = trainer.model.head.weight.detach().clone()
    assert all(p.requires_grad for p in trainer.params)
    assert len(trainer.params) == len(list(trainer.model.parameters())) - 2
    trainer.run()
    assert torch.equal(trainer.model.rnn.weight_hh_l0, w_hh)
    assert not torch.equal(trainer.model.head.weight, head)


# ------------------------------------------------------------------ config
def test_config_round_trip():
    cfg = TrainConfig(cell="GRU", lr=1, optimizer="sgd", momentum=0.9, clip=None)
    assert cfg.cell == "gru" and cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert dataclasses.replace(cfg, steps=5).steps == 5


@pytest.mark.parametrize("changes,message", [
    ({"optimizer": "adamx"}, "unknown optimizer 'adamx': choose one of adam, adamw, sgd"),
    ({"lr": 0}, "lr must be > 0"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"cell": "transformer"}, "unknown cell 'transformer'"),
    ({"init": "kaiming"}, "unknown init 'kaiming'"),
    ({"level": "byte"}, "unknown level 'byte'"),
    ({"batch": 0}, "batch must be a positive whole number"),
    ({"hidden": 2.5}, "hidden must be a positive whole number"),
    ({"steps": -1}, "steps must be a whole number >= 0"),
    ({"eval_batches": True}, "eval_batches must be a positive whole number"),
    ({"dropout": 1.0}, "dropout must be >= 0.0 and < 1.0"),
    ({"clip": -1}, "clip must be >= 0.0"),
    ({"weight_decay": -0.1}, "weight_decay must be >= 0.0"),
    ({"momentum": 0.9}, "momentum applies to the sgd optimizer only"),
    ({"spectral_radius": 0}, "spectral_radius must be > 0.0"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"corpus": " "}, "corpus must name"),
])
def test_config_validation(changes, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        TrainConfig(**changes)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys: learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})
