"""Training: a lean truncated-BPTT loop that another thread can pause, stop and watch.

    trainer = Trainer(TrainConfig(corpus="grammar", cell="lstm", steps=500), run_dir="runs/x")
    result = trainer.run()          # blocks; call from a worker thread to keep a UI live
    trainer.pause(); trainer.resume(); trainer.request_stop()   # from any thread
    lm = trainer.snapshot()         # a CPU copy of the model, safe to probe while training runs

Per step the loop does only: fetch a batch (already on the device), forward, cross entropy,
backward, clip, optimizer step and one device->host sync for the loss and the gradient norm.
Everything else (validation, snapshots for the NaN guard, checkpoints) happens every N steps.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import FORMAT_VERSION, save_checkpoint
from .device import DEVICE_CHOICES, describe_device, is_oom, pick_device
from .errors import CheckpointError, ConfigError
from .model import CELLS, INITS, NONLINEARITIES, LoadedModel, ModelConfig, RNNLM, build_model

OPTIMIZERS = ("adam", "adamw", "sgd")
LEVELS = ("char", "word")
LN2 = math.log(2.0)
# Beyond this many nats per token exp(loss) overflows a double: the perplexity is inf, and a
# model that sure of the wrong answer has diverged even if the loss is still a finite number
# (SGD at lr=1e6 on a vanilla RNN sits at ~1e5 nats without ever producing a nan).
MAX_LOSS = math.log(torch.finfo(torch.float64).max)


def _sane(loss_v: float, norm_v: float) -> bool:
    return loss_v <= MAX_LOSS and math.isfinite(loss_v) and math.isfinite(norm_v)


# ------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainConfig:
    corpus: str = "grammar"
    level: str = "char"
    cell: str = "lstm"
    embed: int = 32
    hidden: int = 64
    layers: int = 1
    nonlinearity: str = "auto"
    init: str = "default"
    spectral_radius: float | None = None
    dropout: float = 0.0
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    clip: float | None = 1.0  # global grad-norm clip; 0 or None = off
    steps: int = 1000  # total steps: a second run() continues up to this
    eval_every: int = 100  # validate every N steps (and at the end)
    eval_batches: int = 8
    seed: int = 0
    device: str = "auto"
    log_every: int = 1
    snapshot_every: int = 50  # keep a copy of good weights this often, for the NaN guard

    def __post_init__(self) -> None:
        def choose(name, options):
            value = getattr(self, name)
            value = value.lower() if isinstance(value, str) else value
            if value not in options:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}: choose one of {', '.join(options)}")
            object.__setattr__(self, name, value)

        def whole(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                kind = "a positive whole number" if low == 1 else f"a whole number >= {low}"
                raise ConfigError(f"{name} must be {kind}, got {value!r}")

        def number(name, low, high=math.inf, low_open=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            if (value <= low if low_open else value < low) or value >= high:
                bound = f"> {low}" if low_open else f">= {low}"
                if high != math.inf:
                    bound += f" and < {high}"
                raise ConfigError(f"{name} must be {bound}, got {value}")
            object.__setattr__(self, name, float(value))

        if not isinstance(self.corpus, str) or not self.corpus.strip():
            raise ConfigError("corpus must name a bundled corpus or a text file")
        choose("level", LEVELS)
        choose("cell", CELLS)
        choose("nonlinearity", ("auto",) + NONLINEARITIES)
        choose("init", INITS)
        choose("optimizer", OPTIMIZERS)
        for name in ("embed", "hidden", "layers", "seq_len", "batch", "eval_batches", "log_every",
                     "snapshot_every"):
            whole(name, 1)
        whole("steps", 0)
        whole("eval_every", 0)  # 0: validate only at the end
        whole("seed", 0)
        number("lr", 0.0, low_open=True)
        number("dropout", 0.0, 1.0)
        number("weight_decay", 0.0)
        number("momentum", 0.0, 1.0)
        if self.clip is not None:
            number("clip", 0.0)
        if self.spectral_radius is not None:
            number("spectral_radius", 0.0, 100.0, low_open=True)
        if not isinstance(self.device, str) or self.device.split(":", 1)[0].lower() not in DEVICE_CHOICES:
            raise ConfigError(f"unknown device {self.device!r}: choose one of {', '.join(DEVICE_CHOICES)}")
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError(f"momentum applies to the sgd optimizer only (optimizer is {self.optimizer})")

    @property
    def clip_on(self) -> bool:
        return bool(self.clip)

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, cell=self.cell, embed=self.embed, hidden=self.hidden,
                           layers=self.layers, nonlinearity=self.nonlinearity, init=self.init,
                           spectral_radius=self.spectral_radius, dropout=self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"training config has unknown keys: {', '.join(unknown)}")
        return cls(**data)


# ------------------------------------------------------------------------- results
@dataclass(frozen=True)
class StepMetrics:
    step: int
    epoch: float
    loss: float  # nats per token
    bits: float  # loss / ln 2
    ppl: float
    grad_norm: float  # global norm before clipping
    clipped: bool
    lr: float
    tokens_per_s: float  # since the previous logged step, validation time excluded
    wall_time: float  # seconds of training so far (pauses excluded)
    val_loss: float | None = None
    val_bits: float | None = None
    val_ppl: float | None = None

    def to_dict(self) -> dict:
        # Hand-built rather than dataclasses.asdict: this runs every logged step.
        return {"step": self.step, "epoch": self.epoch, "loss": self.loss, "bits": self.bits,
                "ppl": self.ppl, "grad_norm": self.grad_norm, "clipped": self.clipped, "lr": self.lr,
                "tokens_per_s": self.tokens_per_s, "wall_time": self.wall_time,
                "val_loss": self.val_loss, "val_bits": self.val_bits, "val_ppl": self.val_ppl}

    def to_json(self) -> str:
        return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                           for k, v in self.to_dict().items()})


@dataclass(frozen=True)
class TrainResult:
    steps_done: int  # total steps taken by this trainer so far
    final: StepMetrics | None
    best_val_loss: float | None
    val_loss: float | None  # validation loss at the end of this run() call
    stopped_reason: str | None  # None: ran to the end; "stopped by user"; else why it stopped
    diverged: bool = False
    kept_step: int | None = None  # after divergence: the step whose weights were kept
    out_of_memory: bool = False


def _ppl(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


def _detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ------------------------------------------------------------------------- trainer
class Trainer:
    def __init__(self, config: TrainConfig, *, run_dir=None, corpus=None, model: RNNLM | None = None,
                 vocab=None, on_metrics=None):
        from .corpus import BatchStream, load_corpus

        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.on_metrics = on_metrics  # called in the training thread after each logged step
        self.device = pick_device(config.device)
        self.corpus = corpus if corpus is not None else load_corpus(config.corpus, config.level, seed=config.seed)
        self.vocab = vocab if vocab is not None else self.corpus.vocab
        n_vocab = len(self.vocab.tokens)
        if n_vocab != len(self.corpus.vocab.tokens):
            raise ConfigError(f"the vocabulary has {n_vocab} tokens but the corpus was encoded with "
                              f"{len(self.corpus.vocab.tokens)}: encode the corpus with the model's vocabulary")
        if model is None:
            model = build_model(config.model_config(n_vocab), seed=config.seed)
        elif model.config.vocab_size != n_vocab:
            raise ConfigError(f"the model reads {model.config.vocab_size} tokens but the vocabulary "
                              f"has {n_vocab}")
        # A CPU twin that snapshot() fills with copied weights: no device memory, no RNG use.
        self._template = copy.deepcopy(model).to("cpu").eval()
        self.model = model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]  # echo-state freezes W_hh
        self.optimizer = self._make_optimizer()

        c, name = config, getattr(self.corpus, "name", config.corpus)
        self.train_stream = BatchStream(self.corpus.train, self.corpus.train_targets, c.batch, c.seq_len,
                                        self.device, name=name, split="training")
        # A short validation split gets fewer rows rather than an error; at least one is needed.
        extra = 1 if self.corpus.val_targets is None else 0
        val_batch = max(1, min(c.batch, len(self.corpus.val) // (c.seq_len + extra)))
        self.val_stream = BatchStream(self.corpus.val, self.corpus.val_targets, val_batch, c.seq_len,
                                      self.device, name=name, split="validation")

        self.step = 0
        self.history: list[StepMetrics] = []
        self.best_val_loss: float | None = None
        self.last_val_loss: float | None = None
        self._val_step: int | None = None  # the step of the last validation
        self._state = None  # hidden state carried between windows (truncated BPTT)
        self._lock = threading.Lock()  # held during a step; snapshot()/save() take it between steps
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._stop = threading.Event()
        self._good: dict[str, torch.Tensor] | None = None  # last weights known to give finite loss
        self._good_step: int | None = None
        self._wall = 0.0  # seconds of training so far, over all run() calls
        self._metrics_file = None

    # ------------------------------------------------------------- control (any thread)
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can see the stop

    @property
    def is_paused(self) -> bool:
        return not self._running.is_set()

    # ------------------------------------------------------------- setup
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        return cls(self.params, lr=c.lr, weight_decay=c.weight_decay)

    # ------------------------------------------------------------- the loop
    def run(self, stop: threading.Event | None = None, until: int | None = None) -> TrainResult:
        """Train until `until` steps in total (default `config.steps`), or until stopped.

        Calling it again continues from `self.step` with the same optimizer state and carried
        hidden state, so run(until=5) then run(until=45) is 45 steps exactly as one run would
        take them (a benchmark can warm up, then time the second call).
        """
        c = self.config
        until = c.steps if until is None else until
        start_step = self.step
        tokens_per_step = c.batch * c.seq_len
        reason, diverged, kept, oom = None, False, None, False
        stopped = (lambda: self._stop.is_set() or stop.is_set()) if stop is not None else self._stop.is_set
        self.model.train()
        self._open_metrics()
        lr = self.optimizer.param_groups[0]["lr"]
        t_run = time.perf_counter()
        wall0, paused_s = self._wall, 0.0
        t_mark, since_log = t_run, 0  # tokens/s covers the steps since the last log
        try:
            while self.step < until:
                if stopped():
                    reason = "stopped by user"
                    break
                if not self._running.is_set():
                    t_pause = time.perf_counter()
                    while not self._running.wait(0.05):  # poll: an external `stop` must wake us too
                        if stopped():
                            break
                    dt = time.perf_counter() - t_pause
                    paused_s += dt
                    t_mark += dt
                    continue

                # Every snapshot_every steps keep a copy of the weights (on the device, no sync);
                # it becomes the fallback for the NaN guard once it has given a finite step.
                snap = self._good is None or self.step % c.snapshot_every == 0
                try:
                    with self._lock:
                        if snap:
                            pending = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                        loss_v, norm_v = self._train_step()
                except RuntimeError as exc:
                    if not is_oom(exc):
                        raise
                    reason, oom = self._out_of_memory(), True
                    break
                if not _sane(loss_v, norm_v):
                    reason, kept = self._diverged(loss_v, norm_v, lr)
                    diverged = True
                    break
                if snap:
                    self._good, self._good_step = pending, self.step
                self.step += 1
                since_log += 1

                do_eval = bool(c.eval_every) and self.step % c.eval_every == 0
                if not (do_eval or self.step % c.log_every == 0 or self.step == until):
                    continue
                now = time.perf_counter()
                tok_s = tokens_per_step * since_log / max(now - t_mark, 1e-9)
                val = self._validate() if do_eval else None
                self._log(StepMetrics(
                    step=self.step, epoch=self.train_stream.progress, loss=loss_v, bits=loss_v / LN2,
                    ppl=_ppl(loss_v), grad_norm=norm_v, clipped=bool(c.clip_on and norm_v > c.clip),
                    lr=lr, tokens_per_s=tok_s, wall_time=wall0 + (now - t_run) - paused_s,
                    val_loss=val, val_bits=None if val is None else val / LN2,
                    val_ppl=None if val is None else _ppl(val),
                ))
                t_mark, since_log = time.perf_counter(), 0  # validation and logging excluded
        finally:
            self._wall = wall0 + (time.perf_counter() - t_run) - paused_s
            if self._metrics_file is not None:
                self._metrics_file.close()
                self._metrics_file = None
            self._stop.clear()

        # The end of a run always has a validation loss. It runs after the last step was
        # reported (not attached to its StepMetrics) so a caller timing steps never times it.
        if self.step > 0 and self._val_step != self.step and not oom:
            self._validate()
        if self.run_dir is not None and (self.step != start_step or diverged):  # diverged: the kept weights
            self.save(self.run_dir)
        return TrainResult(steps_done=self.step, final=self.history[-1] if self.history else None,
                           best_val_loss=self.best_val_loss, val_loss=self.last_val_loss,
                           stopped_reason=reason, diverged=diverged, kept_step=kept, out_of_memory=oom)

    def _train_step(self) -> tuple[float, float]:
        """Forward, loss, backward, clip, step. Returns (loss, pre-clip global grad norm).

        The optimizer step is skipped when either is not finite (or the loss is past MAX_LOSS),
        so a bad gradient never reaches the weights.
        """
        c = self.config
        if self.train_stream.at_row_start:
            self._state = None  # the rows start over: the carried state belongs elsewhere
        x, y = self.train_stream.next()
        logits, state = self.model(x, self._state)
        self._state = _detach(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.clip_on:
            norm = torch.nn.utils.clip_grad_norm_(self.params, c.clip)  # returns the pre-clip norm
        else:  # still report the norm, without the no-op rescale
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        loss_v, norm_v = torch.stack([loss.detach(), norm.to(loss.dtype)]).tolist()  # the one sync
        if _sane(loss_v, norm_v):
            self.optimizer.step()
        return loss_v, norm_v

    # ------------------------------------------------------------- failure handling
    def _diverged(self, loss_v: float, norm_v: float, lr: float) -> tuple[str, int | None]:
        """Keep the last good weights and say what happened.

        Good weights are weights whose loss was finite. If only the gradient went bad, the
        current weights qualify; if the loss itself did, they do not (sampling from them would
        give nan or nonsense), so the last snapshot that gave a finite loss comes back.
        """
        failed = self.step + 1
        if not math.isfinite(loss_v):
            what = f"loss became {_nonfinite_name(loss_v)}"
        elif loss_v > MAX_LOSS:
            what = f"loss exploded to {loss_v:.3g} nats per token (perplexity inf)"
        else:
            what = f"gradient norm became {_nonfinite_name(norm_v)}"
        with self._lock:
            self.optimizer.zero_grad(set_to_none=True)
            current_ok = loss_v <= MAX_LOSS and all(bool(torch.isfinite(p).all())
                                                   for p in self.model.parameters())
            if current_ok:
                kept = self.step
            elif self._good is not None:
                self.model.load_state_dict(self._good)
                kept = self._good_step
                self.step = kept  # the step count follows the weights
            else:
                kept = None
            # Moments built from exploding gradients would poison a later run(); start afresh.
            self.optimizer.state.clear()
            self._state = None
        if kept is None:
            return (f"{what} at step {failed} (lr={lr:g}): training stopped; no weights with a "
                    f"finite loss were left to restore", None)
        return (f"{what} at step {failed} (lr={lr:g}): training stopped and the weights from step "
                f"{kept} were kept", kept)

    def _out_of_memory(self) -> str:
        self.optimizer.zero_grad(set_to_none=True)
        self._state = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        c = self.config
        return (f"out of memory on {describe_device(self.device)} at step {self.step + 1} "
                f"(batch {c.batch} x seq_len {c.seq_len}, hidden {c.hidden} x {c.layers} layers): "
                f"try a smaller --batch, --seq-len or --hidden")

    # ------------------------------------------------------------- validation
    @torch.no_grad()
    def _validate(self) -> float:
        """Mean loss over the first eval_batches windows of the validation split.

        The same windows every time (the stream restarts, with its own carried state), so
        successive validation losses and best/ are comparable.
        """
        stream = self.val_stream
        stream.reset()
        n = max(1, min(self.config.eval_batches, stream.windows_per_epoch))
        was_training = self.model.training
        self.model.eval()
        state, losses = None, []
        try:
            for _ in range(n):
                x, y = stream.next()
                logits, state = self.model(x, state)
                losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))
            val = torch.stack(losses).mean().item()
        finally:
            self.model.train(was_training)
        self.last_val_loss, self._val_step = val, self.step
        if math.isfinite(val) and (self.best_val_loss is None or val < self.best_val_loss):
            self.best_val_loss = val
            if self.run_dir is not None:
                self.save(self.run_dir, name="best")
        return val

    # ------------------------------------------------------------- logging
    def _open_metrics(self) -> None:
        if self.run_dir is None or self._metrics_file is not None:
            return
        path = self.run_dir / "metrics.jsonl"
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._metrics_file = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _log(self, m: StepMetrics) -> None:
        self.history.append(m)
        if self._metrics_file is not None:
            self._metrics_file.write(m.to_json() + "\n")
            self._metrics_file.flush()
        if self.on_metrics is not None:
            self.on_metrics(m)

    # ------------------------------------------------------------- reading the model
    def metrics_summary(self) -> dict:
        last = self.history[-1] if self.history else None
        return {
            "step": self.step,
            "train_loss": last.loss if last else None,
            "val_loss": self.last_val_loss,
            "best_val_loss": self.best_val_loss,
            "bits_per_token": last.bits if last else None,
            "tokens_per_s": last.tokens_per_s if last else None,
            "wall_time_s": self._wall,
        }

    def _meta(self) -> dict:
        return {
            "corpus": getattr(self.corpus, "name", self.config.corpus),
            "level": getattr(self.vocab, "level", self.config.level),
            "categories": getattr(self.corpus, "categories", None),
            "train": self.config.to_dict(),
            "metrics": self.metrics_summary(),
        }

    def snapshot(self) -> LoadedModel:
        """A CPU copy of the model in eval mode, safe to use while training goes on."""
        with self._lock:
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            meta = self._meta()
        model = copy.deepcopy(self._template)
        model.load_state_dict(state)
        model.eval()
        meta.update(format_version=FORMAT_VERSION, model=model.config.to_dict(), vocab=self.vocab.to_dict(),
                    source=f"training (step {meta['metrics']['step']})")
        return LoadedModel(model=model, vocab=self.vocab, meta=meta)

    def save(self, run_dir=None, name: str = "model") -> Path:
        """Write a checkpoint (RUN_DIR, or RUN_DIR/best for name="best"); returns its directory."""
        target = Path(run_dir) if run_dir is not None else self.run_dir
        if target is None:
            raise ConfigError("save() needs a run directory: none was given to the Trainer")
        with self._lock:
            return save_checkpoint(target, self.model, self.vocab, self._meta(), name=name)


def _nonfinite_name(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")

