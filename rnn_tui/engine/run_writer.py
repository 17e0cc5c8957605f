"""`RunWriter`: log any training loop into an rnn-tui run directory, as TensorBoard's
SummaryWriter logs into a log directory.

    from rnn_tui import RunWriter

    with RunWriter("runs/mine", vocab=itos, level="char") as run:   # or level="bpe", tokenizer=tok
        for step, (x, y) in enumerate(batches):
            ...
            run.log(step, loss=loss.item(), grad_norm=gn, lr=lr, val_loss=v)   # any scalar names
            if step % 500 == 0:
                run.checkpoint(model, step=step)        # the user's own nn.Module

The directory has rnn-tui's own format (`rnn_tui.runs`): whole metrics lines appended to
``metrics.jsonl`` (the names rnn-tui knows: loss, grad_norm, lr, val_loss, tokens_per_s,
epoch, wall_time; any other scalar is kept under its own name) and atomic checkpoints
(safetensors + config.json). So ``rnn-tui watch runs/mine``, ``rnn-tui runs/mine``,
``trace``, ``grads``, ``jacobian`` and the inspector all work on it while the script trains.

`checkpoint` maps the module through `engine.external.from_module`: its embedding, its
nn.RNN/LSTM/GRU and its output Linear, found by type or named
(``embedding="encoder", rnn="rnn", head="decoder"``); what it cannot map is said once.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..runs.layout import CONFIG_NAME, METRICS_NAME
from ..runs.metrics import MetricsWriter
from .errors import ConfigError

KNOWN = ("loss", "grad_norm", "lr", "val_loss", "tokens_per_s", "epoch", "wall_time")
LN2 = math.log(2.0)


class RunWriter:
    """Metrics and checkpoints of a training loop that is not rnn-tui's, in rnn-tui's format."""

    def __init__(self, run_dir: str | os.PathLike, vocab=None, level: str = "char", *, tokenizer=None,
                 corpus: str | None = None, config: dict | None = None, steps: int | None = None,
                 quiet: bool = False) -> None:
        """``vocab``: the tokens in id order (itos), a token->id dict, or an rnn-tui Vocab;
        ``level``: "char", "word" or "bpe"; ``tokenizer`` (level "bpe", instead of ``vocab``): a
        Hugging Face ``tokenizers.Tokenizer`` or the path of its tokenizer.json, kept in the run
        directory; ``corpus``: what it trains on: the path of the text file (the inspector then finds
        it, and knows it again by its size and hash) or a name shown in headers; ``config``:
        anything about the run worth keeping (hyperparameters), JSON-able; ``steps`` (or
        ``config["steps"]``): how many steps the loop will run, so `rnn-tui watch` shows an ETA
        and "done" once a checkpoint at that step is saved."""
        from .checkpoint import check_vocab_fits
        from .external import _vocab

        self.run_dir = Path(run_dir)
        if (self.run_dir / CONFIG_NAME).exists() and not (self.run_dir / METRICS_NAME).exists():
            raise ConfigError(f"{self.run_dir} holds a checkpoint that is not a RunWriter's run: "
                              f"give another directory")
        if vocab is None and tokenizer is None:
            raise ConfigError("RunWriter needs the vocabulary (tokens in id order) or, for level='bpe', "
                              "the tokenizer")
        self.vocab = _vocab(vocab, level, tokenizer)
        check_vocab_fits(self.vocab)
        self.level = self.vocab.level
        self.corpus = corpus
        if steps is None and isinstance(config, dict):  # taken from the config only when it is a count
            given = config.get("steps")
            steps = given if isinstance(given, int) and not isinstance(given, bool) and given > 0 else None
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ConfigError(f"steps is how many steps the loop runs, a whole number >= 1, not {steps!r}")
        self.steps = steps
        self._last_saved = None  # (rnn-tui's copy of the model, meta) of the newest checkpoint
        self._closed = False
        self._corpus_source = None
        if corpus and Path(str(corpus)).expanduser().is_file():  # a text file: kept by its fingerprint
            from .corpus.files import source_of

            self._corpus_source = source_of(Path(str(corpus)).expanduser())
        self.config = dict(config or {})
        self.quiet = quiet
        self._metrics = MetricsWriter(self.run_dir / METRICS_NAME)
        self._start = time.monotonic()
        self._said: set[str] = set()
        self.last_step: int | None = None
        self._last: dict[str, float] = {}

    # -------------------------------------------------------------- metrics
    def log(self, step: int, **scalars: Any) -> None:
        """One line of metrics.jsonl for ``step``: every keyword a number (or None)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(f"step must be a whole number >= 0, got {step!r}")
        record: dict[str, Any] = {"step": step}
        for name, value in scalars.items():
            if value is not None and hasattr(value, "item"):
                value = value.item()  # a 0-d tensor or numpy scalar
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"{name}={value!r}: log numbers (a tensor's .item()), not {type(value).__name__}")
            record[name] = None if value is None or not math.isfinite(value) else float(value)
        record.setdefault("wall_time", time.monotonic() - self._start)
        loss = record.get("loss")
        if loss is not None:
            record.setdefault("bits", loss / LN2)
            record.setdefault("ppl", math.exp(min(loss, 700.0)))
        if record.get("val_loss") is not None:
            record.setdefault("val_bits", record["val_loss"] / LN2)
        self._metrics.open()
        self._metrics.append(json.dumps(record))
        self.last_step = step
        self._last = {k: v for k, v in record.items() if isinstance(v, float)}

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self, model, step: int | None = None, *, embedding: str | None = None,
                   rnn: str | None = None, head: str | None = None) -> Path | None:
        """Save the user's module as an rnn-tui checkpoint in the run directory (atomically:
        a reader sees the old checkpoint or the new one). Returns its directory, or None when
        the module cannot be mapped or saved: that is said once on stderr, and the training
        loop goes on (a logger never stops it)."""
        from .checkpoint import save_checkpoint
        from .errors import RnnTuiError
        from .external import from_module

        try:
            mapped = from_module(model, self.vocab, self.level, embedding=embedding, rnn=rnn, head=head)
        except RnnTuiError as exc:
            self._say(f"checkpoint not saved: {exc}")
            return None
        note = mapped.note_line()
        if note:
            self._say(note)
        step = self.last_step if step is None else step
        metrics = {"step": step, "train_loss": self._last.get("loss"), "val_loss": self._last.get("val_loss"),
                   "wall_time_s": time.monotonic() - self._start}
        meta = {"corpus": self.corpus or "(your data)", "corpus_source": self._corpus_source,
                "level": self.level, "metrics": metrics, "train": {"steps": self.steps} if self.steps else None,
                "imported": mapped.lm.meta.get("imported"), "writer": {"config": self.config}}
        try:
            saved = save_checkpoint(self.run_dir, mapped.lm.model, self.vocab, meta)
        except RnnTuiError as exc:
            self._say(f"checkpoint not saved: {exc}")
            return None
        self._last_saved = (mapped.lm.model, meta)
        return saved

    def _say(self, line: str) -> None:
        """One line on stderr, once for each distinct line."""
        if line not in self._said and not self.quiet:
            self._said.add(line)
            print(f"rnn-tui: {line}", file=sys.stderr)

    # -------------------------------------------------------------- lifetime
    def close(self, finished: bool = True) -> None:
        """Close the metrics file. ``finished``: the loop ended as planned, so the run reads
        "done" in `rnn-tui watch` (its last checkpoint is saved again, with its step as the
        run's last; without steps= a run that stops writing would read "stale"). A ``with``
        block passes False when it ends with an exception."""
        self._metrics.close()
        if not finished or self._last_saved is None or self._closed:
            return
        self._closed = True
        from .checkpoint import save_checkpoint
        from .errors import RnnTuiError

        model, meta = self._last_saved
        if self.steps and meta["metrics"]["step"] >= self.steps:
            return  # already "done"
        meta = {**meta, "train": {"steps": meta["metrics"]["step"], "finished": True}}
        try:
            save_checkpoint(self.run_dir, model, self.vocab, meta)
        except RnnTuiError as exc:
            self._say(f"the run's end not recorded: {exc}")

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close(finished=kind is None)
