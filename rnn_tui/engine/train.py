"""Training: a lean truncated-BPTT loop that another thread can pause, stop and watch.

    trainer = Trainer(TrainConfig(corpus="grammar", cell="lstm", steps=500), run_dir="runs/x")
    result = trainer.run()          # blocks; call from a worker thread to keep a UI live
    trainer.pause(); trainer.resume(); trainer.request_stop()   # from any thread
    lm = trainer.snapshot()         # a CPU copy of the model, safe to probe while training runs
    trainer = Trainer.from_run("runs/x", overrides={"steps": 1000})   # continue a saved run

Per step the loop does only: fetch a batch (already on the device), forward, cross entropy,
backward, clip and the optimizer step. The loss and the gradient norm stay on the device
until a logged step (every `log_every` steps, validation and checkpoint steps, the last step),
which reads all of them with one device->host sync (and, under DDP, one all-reduce).
Everything else (validation, snapshots for the NaN guard, checkpoints) happens every N steps.

The NaN guard: at a logged step a non-finite loss or gradient norm (or a loss past MAX_LOSS)
stops training. With log_every=1 that step's update is never applied and, when the loss was
finite, the current weights are kept. With log_every > 1 the steps in between were applied
unchecked, so the weights go back to the last snapshot known to give a finite loss.

A run directory (run_dir; its layout is ``rnn_tui.runs.layout``'s) gets metrics.jsonl (one whole
line per logged step: ``engine/run_log.py``), RUN_DIR/best/ (lowest validation loss) and the
latest checkpoint in RUN_DIR itself every `save_every` steps and at the end, with the
optimizer state and the carried hidden state so `Trainer.from_run` continues exactly where
it stopped (``engine/resume.py``); optionally TensorBoard files in RUN_DIR/tb/ (--amp: precision.py).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..runs.layout import BEST_NAME
from ..runs.metrics import StepMetrics  # noqa: F401  (re-exported: what a logged step gives)
from .checkpoint import FORMAT_VERSION, MAIN_NAME, check_vocab_fits, save_checkpoint
from .config import LEVELS, OPTIMIZERS, RESUMABLE, TrainConfig  # noqa: F401  (re-exported)
from .device import check_fits, describe_device, is_oom, pick_device
from .errors import ConfigError
from .model import LoadedModel, RNNLM, build_model
from .precision import autocast, check_amp, recurrence_in_float32
from .resume import continue_run, training_state
from .run_log import RunLog, find_tensorboard, start_over, write_history

LN2 = math.log(2.0)
# Beyond this many nats per token exp(loss) overflows a double: the perplexity is inf, and a
# model that sure of the wrong answer has diverged even if the loss is still a finite number
# (SGD at lr=1e6 on a vanilla RNN sits at ~1e5 nats without ever producing a nan).
MAX_LOSS = math.log(torch.finfo(torch.float64).max)


def _sane(loss_v: float, norm_v: float) -> bool:
    return loss_v <= MAX_LOSS and math.isfinite(loss_v) and math.isfinite(norm_v)


# ------------------------------------------------------------------------- results
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
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()


# ------------------------------------------------------------------------- trainer
class Trainer:
    def __init__(self, config: TrainConfig, *, run_dir=None, corpus=None, model: RNNLM | None = None,
                 vocab=None, on_metrics=None, dist=None, tensorboard: bool | None = False,
                 cache_dir=None):
        """`dist`: a distributed.DistContext for DDP (None: one process). `tensorboard`: True to
        write TensorBoard events to RUN_DIR/tb (a note in `notes` when it is not installed),
        None to write them when it is installed, False not to. `cache_dir`: where a text file
        corpus's encoding is cached (None: encode it every time)."""
        from .corpus import BatchStream

        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.on_metrics = on_metrics  # called in the training thread after each logged step
        self.dist = dist
        self.is_main = dist is None or dist.is_main  # only the main process writes anything
        self.notes: list[str] = []  # things a front end should tell the user once
        if dist is not None:
            dist.check_batch(config.batch)
        self.device = dist.device if dist is not None else pick_device(config.device)
        check_amp(config.amp, self.device, self.notes)
        self.corpus = corpus if corpus is not None else self._load_corpus(cache_dir, vocab)
        self.vocab = vocab if vocab is not None else self.corpus.vocab
        check_vocab_fits(self.vocab)
        n_vocab = len(self.vocab.tokens)
        if n_vocab != len(self.corpus.vocab.tokens):
            raise ConfigError(f"the vocabulary has {n_vocab} tokens but the corpus was encoded with "
                              f"{len(self.corpus.vocab.tokens)}: encode the corpus with the model's vocabulary")
        if model is None:
            model_config = config.model_config(n_vocab)
            check_fits(model_config, self.device)
            model = build_model(model_config, seed=config.seed)
        elif model.config.vocab_size != n_vocab:
            raise ConfigError(f"the model reads {model.config.vocab_size} tokens but the vocabulary "
                              f"has {n_vocab}")
        # A CPU twin that snapshot() fills with copied weights: no device memory, no RNG use.
        self._template = copy.deepcopy(model).to("cpu").eval()
        self.model = model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]  # echo-state freezes W_hh
        if config.amp:
            recurrence_in_float32(self.model.rnn, self.device.type)
        self._net = self.model  # what the training step calls: the model, or its DDP wrapper
        self._rows = None  # under DDP: this rank's block of the global batch's rows
        if dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._net = DistributedDataParallel(self.model, device_ids=ids)  # broadcasts rank 0's weights
            if dist.world_size > 1:
                self._rows = dist.rows(config.batch)
        self.optimizer = self._make_optimizer()

        c, name = config, getattr(self.corpus, "name", config.corpus)
        # The global batch on every rank: each takes its rows, so the windows are those of one process.
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
        self._pending: list[tuple[int, dict]] = []  # snapshots whose next loss is not checked yet
        self._window: list[tuple[torch.Tensor, torch.Tensor]] = []  # (loss, norm) since the last log
        self._wall = 0.0  # seconds of training so far, over all run() calls
        self._clock: tuple[float, float] | None = None  # (perf_counter at run() start, wall then)
        self._paused_s = 0.0
        writes = self.run_dir if self.is_main else None  # under DDP only the main process writes
        self._run_log = RunLog(writes, find_tensorboard(tensorboard, self.notes) if writes is not None else None)
        if writes is not None:  # the directory of a run killed before its first checkpoint
            note = start_over(writes)
            if note:
                self.notes.append(note)

    # ------------------------------------------------------------- resuming a saved run
    @classmethod
    def from_run(cls, run_dir, *, overrides: dict | None = None, corpus=None, on_metrics=None,
                 dist=None, tensorboard: bool | None = False, cache_dir=None) -> "Trainer":
        """A Trainer that continues the run saved in `run_dir` (its latest checkpoint).

        The TrainConfig is the run's own; `overrides` may change the RESUMABLE settings (a
        larger `steps` extends the run) and "corpus" (the same text moved elsewhere: its
        vocabulary must be the run's). The step count, optimizer state, carried hidden state,
        position in the training stream, best validation loss and training clock continue;
        metrics.jsonl is appended to, after dropping lines past the checkpoint's step (left by
        a run that went on after its last save) and any torn last line.
        """
        return continue_run(cls, run_dir, overrides=overrides, corpus=corpus, on_metrics=on_metrics,
                            dist=dist, tensorboard=tensorboard, cache_dir=cache_dir)

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

    def _load_corpus(self, cache_dir, vocab=None):
        from .corpus import Vocab, load_corpus

        c = self.config
        if c.level == "bpe" and vocab is None and c.tokenizer:
            vocab = Vocab.from_tokenizer(c.tokenizer)  # the user's tokenizer.json, read with care

        def load():
            return load_corpus(c.corpus, c.level, seed=c.seed, cache_dir=cache_dir, bpe_vocab=c.bpe_vocab,
                               vocab=vocab if c.level == "bpe" else None)

        if self.dist is None or self.dist.world_size == 1:
            return load()
        # Rank 0 first (it fills the encoding cache), then the others; a failure reaches all.
        corpus, error, failure = None, None, None
        if self.dist.is_main:
            try:
                corpus = load()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others hear of it
                failure, error = exc, str(exc) or type(exc).__name__
        error = self.dist.broadcast_object(error)
        if failure is not None:
            raise failure
        if error is not None:
            raise ConfigError(f"rank 0 could not load the corpus: {error}")
        return corpus if corpus is not None else load()

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
        tokens_per_step = c.batch * c.seq_len  # the global batch, over all ranks
        reason, diverged, kept, oom = None, False, None, False
        stopped = (lambda: self._stop.is_set() or stop.is_set()) if stop is not None else self._stop.is_set
        self.model.train()
        self._run_log.open(self.step)
        lr = self.optimizer.param_groups[0]["lr"]
        t_run = time.perf_counter()
        self._clock, self._paused_s = (t_run, self._wall), 0.0
        t_mark = t_run  # tokens/s covers the steps since the last log
        try:
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
                        self._paused_s += dt
                        t_mark += dt
                        continue

                    nxt = self.step + 1
                    # ... and at the run's last step, so the curve ends on the value best/ and
                    # `info` report (the post-run validation below then has nothing to add).
                    do_eval = bool(c.eval_every) and (nxt % c.eval_every == 0 or nxt == c.steps)
                    do_save = (self.run_dir is not None and bool(c.save_every) and nxt % c.save_every == 0
                               and nxt != until)  # the end of run() saves anyway
                    check = do_eval or do_save or nxt % c.log_every == 0 or nxt == until
                    # Every snapshot_every steps keep a copy of the weights (on the device, no
                    # sync); it becomes the NaN guard's fallback once the step after it is checked.
                    snap = (self._good is None and not self._pending) or self.step % c.snapshot_every == 0
                    try:
                        with self._lock:
                            if snap:
                                self._pending.append((self.step, {k: v.detach().clone() for k, v
                                                                  in self.model.state_dict().items()}))
                            loss_t, norm_t = self._train_step()
                            self._window.append((loss_t, norm_t))
                            values = self._read_window() if check else None  # the one sync
                            # A checked step is applied only when sane; unchecked ones always are.
                            if values is None or all(_sane(*v) for v in values):
                                self.optimizer.step()
                    except RuntimeError as exc:
                        if not is_oom(exc):
                            raise
                        reason, oom = self._out_of_memory(), True
                        break
                    self.step += 1
                    if values is None:
                        continue

                    now = time.perf_counter()
                    good, bad = self._settle(values)
                    if bad is not None:
                        if good:
                            self._log(self._metrics(good, lr, tokens_per_step, now - t_mark, None))
                        # Only the checked step's own update is still unapplied.
                        reason, kept = self._diverged(*values[bad], lr, may_keep_current=bad == len(values) - 1)
                        diverged = True
                        break
                    val = self._validate() if do_eval and self.is_main else None
                    self._log(self._metrics(good, lr, tokens_per_step, now - t_mark, val))
                    if do_save:
                        self._save_latest()
                    t_mark = time.perf_counter()  # validation, logging and saving excluded
                if self._window:  # stopped or out of memory with steps not yet checked
                    outcome = self._flush(lr, tokens_per_step, time.perf_counter() - t_mark, collective=True)
                    if outcome is not None:
                        div_reason, kept = outcome
                        reason = reason if oom else div_reason
                        diverged = True
            except KeyboardInterrupt:
                if self._window:  # check what was taken, so a save after this keeps good weights
                    try:
                        self._flush(lr, tokens_per_step, time.perf_counter() - t_mark, collective=False)
                    except Exception:  # noqa: BLE001 - the interrupt is what matters
                        pass
                raise
        finally:
            self._wall = self._wall_now()
            self._clock = None
            self._pending.clear()
            self._run_log.close()
            self._stop.clear()

        # The end of a run always has a validation loss. It runs after the last step was
        # reported (not attached to its StepMetrics) so a caller timing steps never times it.
        if self.is_main and self.step > 0 and self._val_step != self.step and not oom:
            self._validate()
        if self.run_dir is not None and (self.step != start_step or diverged):  # diverged: the kept weights
            self._save_latest()
        return TrainResult(steps_done=self.step, final=self.history[-1] if self.history else None,
                           best_val_loss=self.best_val_loss, val_loss=self.last_val_loss,
                           stopped_reason=reason, diverged=diverged, kept_step=kept, out_of_memory=oom)

    def _train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss, backward, clip. Returns (loss, pre-clip global grad norm) on the device.

        No host sync here, and no optimizer step: the loop takes it, after checking the values
        first on a checked (logged) step.
        """
        c = self.config
        if self.train_stream.at_row_start:
            self._state = None  # the rows start over: the carried state belongs elsewhere
        x, y = self.train_stream.next()
        if self._rows is not None:  # DDP: this rank's rows of the global batch
            x, y = x[self._rows], y[self._rows]
        with autocast(self.config.amp, self.device):
            logits, state = self._net(x, self._state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self._state = _detach(state)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.clip_on:
            norm = torch.nn.utils.clip_grad_norm_(self.params, c.clip)  # returns the pre-clip norm
        else:  # still report the norm, without the no-op rescale
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        return loss.detach(), norm.detach()

    def _read_window(self, collective: bool = True) -> list[tuple[float, float]]:
        """(loss, grad norm) of every step since the last check: one sync; under DDP the
        losses are averaged over the ranks (one all-reduce) so every rank decides alike."""
        losses = torch.stack([loss for loss, _ in self._window]).float()
        norms = torch.stack([norm for _, norm in self._window]).to(losses.dtype)
        both = torch.stack([losses, norms])
        if collective and self.dist is not None:
            self.dist.all_reduce_mean_(both)
        loss_vs, norm_vs = both.tolist()
        return list(zip(loss_vs, norm_vs))

    def _settle(self, values):
        """Clear the window; confirm the snapshots its sane steps vouch for.

        Returns (the sane steps' values up to the first bad one, index of that bad one or None).
        """
        start = self.step - len(values)  # steps done before the window
        bad = next((i for i, v in enumerate(values) if not _sane(*v)), None)
        n_good = len(values) if bad is None else bad
        # A snapshot is good when the loss computed from it was finite: every sane step's,
        # and the bad step's too when only its gradient went wrong.
        vouched = n_good + (bad is not None and values[bad][0] <= MAX_LOSS and math.isfinite(values[bad][0]))
        confirmed = [p for p in self._pending if p[0] < start + vouched]
        if confirmed:
            self._good_step, self._good = confirmed[-1]
        self._pending = [p for p in self._pending if p[0] >= start + vouched]
        self._window.clear()
        if bad is not None:
            self.step = start + bad  # the steps that were fine
        return values[:n_good], bad

    def _flush(self, lr, tokens_per_step, elapsed, collective):
        """Check and log steps taken since the last check (the loop stopped between checks)."""
        values = self._read_window(collective)
        good, bad = self._settle(values)
        if good:
            self._log(self._metrics(good, lr, tokens_per_step, elapsed, None))
        if bad is None:
            return None
        # These updates were applied unchecked: the current weights cannot be trusted.
        return self._diverged(*values[len(good)], lr, may_keep_current=False)

    def _metrics(self, values, lr, tokens_per_step, elapsed, val) -> StepMetrics:
        """One StepMetrics for the steps since the last log: mean loss and grad norm."""
        c = self.config
        n = len(values)
        loss_v = sum(v[0] for v in values) / n
        norm_v = sum(v[1] for v in values) / n
        return StepMetrics(
            step=self.step, epoch=self.train_stream.progress, loss=loss_v, bits=loss_v / LN2,
            ppl=_ppl(loss_v), grad_norm=norm_v, clipped=bool(c.clip_on and any(v[1] > c.clip for v in values)),
            lr=lr, tokens_per_s=tokens_per_step * n / max(elapsed, 1e-9), wall_time=self._wall_now(),
            val_loss=val, val_bits=None if val is None else val / LN2,
            val_ppl=None if val is None else _ppl(val),
        )

    def _wall_now(self) -> float:
        if self._clock is None:
            return self._wall
        t_run, wall0 = self._clock
        return wall0 + (time.perf_counter() - t_run) - self._paused_s

    # ------------------------------------------------------------- failure handling
    def _diverged(self, loss_v: float, norm_v: float, lr: float,
                  may_keep_current: bool = True) -> tuple[str, int | None]:
        """Keep the last good weights and say what happened.

        Good weights are weights whose loss was finite. If only the gradient went bad (and its
        update was not applied), the current weights qualify; if the loss itself did, they do
        not (sampling from them would give nan or nonsense), so the last snapshot that gave a
        finite loss comes back.
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
            current_ok = may_keep_current and loss_v <= MAX_LOSS and all(
                bool(torch.isfinite(p).all()) for p in self.model.parameters())
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
            self._pending.clear()
        if kept is None:
            return (f"{what} at step {failed} (lr={lr:g}): training stopped; no weights with a "
                    f"finite loss were left to restore", None)
        return (f"{what} at step {failed} (lr={lr:g}): training stopped and the weights from step "
                f"{kept} were kept", kept)

    def _out_of_memory(self) -> str:
        self.optimizer.zero_grad(set_to_none=True)
        self._state = None
        self._pending.clear()
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
        successive validation losses and best/ are comparable. Under DDP only rank 0 runs it.
        """
        stream = self.val_stream
        stream.reset()
        n = max(1, min(self.config.eval_batches, stream.windows_per_epoch))
        was_training = self.model.training
        self.model.eval()
        state, losses = None, []
        try:
            with autocast(self.config.amp, self.device):
                for _ in range(n):
                    x, y = stream.next()
                    logits, state = self.model(x, state)
                    losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).float())
            val = torch.stack(losses).mean().item()
        finally:
            self.model.train(was_training)
        self.last_val_loss, self._val_step = val, self.step
        if math.isfinite(val) and (self.best_val_loss is None or val < self.best_val_loss):
            self.best_val_loss = val
            if self.run_dir is not None:
                self.save(self.run_dir, name=BEST_NAME)
        return val

    # ------------------------------------------------------------- logging
    def _log(self, m: StepMetrics) -> None:
        self.history.append(m)
        self._run_log.write(m)
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
            "wall_time_s": self._wall_now(),
        }

    def _meta(self) -> dict:
        return {
            "corpus": getattr(self.corpus, "name", self.config.corpus),
            "corpus_source": getattr(self.corpus, "source", None),
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

    def _gather_carry(self):
        """The carried hidden state of the whole global batch (a collective under DDP)."""
        state = self._state
        if self._rows is None or state is None:
            return state
        parts = state if isinstance(state, tuple) else (state,)
        full = tuple(self.dist.all_gather_rows(t.float(), dim=1) for t in parts)
        return full if isinstance(state, tuple) else full[0]

    def _save_latest(self) -> None:
        """The latest checkpoint with its training state (every rank must call it under DDP)."""
        carry = self._gather_carry()
        if self.is_main:
            self._run_log.sync()  # the curve reaches the checkpoint's step, even after a power loss
            with self._lock:
                tensors, info = training_state(self, carry)
                save_checkpoint(self.run_dir, self.model, self.vocab, self._meta(),
                                resume_tensors=tensors, resume_info=info)

    def save(self, run_dir=None, name: str = MAIN_NAME) -> Path:
        """Write a checkpoint (RUN_DIR, or RUN_DIR/best for name="best"); returns its directory.

        The main checkpoint carries the training state `from_run` resumes from. Under DDP only
        rank 0 writes, and without the other ranks' carried hidden state (no collective here,
        so it is safe after an interrupt): a resume then starts those rows from zeros. Elsewhere
        than its own run directory (the TUI's saves), the curve so far is written too."""
        target = Path(run_dir) if run_dir is not None else self.run_dir
        if target is None:
            raise ConfigError("save() needs a run directory: none was given to the Trainer")
        if not self.is_main:
            return target if name == MAIN_NAME else target / name
        self._run_log.sync()
        with self._lock:
            if name != MAIN_NAME:
                return save_checkpoint(target, self.model, self.vocab, self._meta(), name=name)
            tensors, info = training_state(self, self._state if self._rows is None else None)
            saved = save_checkpoint(target, self.model, self.vocab, self._meta(), name=name,
                                    resume_tensors=tensors, resume_info=info)
            if self.run_dir is None or Path(self.run_dir).resolve() != target.resolve():
                write_history(target, list(self.history))  # a directory this run does not log into
            return saved


def _nonfinite_name(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")

