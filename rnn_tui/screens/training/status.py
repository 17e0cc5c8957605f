"""The status line under the charts: one builder for a run trained here and a watched one.

    ▶ #1 running · step 512/8000 · epoch 0.41 · loss 1.234 nats · 1.780 bits/tok · val 1.301 nats
      · 48k tok/s · ETA 2:05
    ◉ lstm-a live · step 512/8000 · loss 1.234 nats · 1.780 bits/tok · 48k tok/s · ETA 2:05
      · updated 3 s ago · model: ckpt 500

Every run gets the same parts in the same words: its name and state, the step (of how many
when known), the loss in nats and bits per token (and perplexity in ppl units), the newest
validation loss and the tokens/s in the chart's unit, and the ETA while it trains. A run
trained here adds its epoch; a watched one, which has no room for that, adds how long ago its
file last grew (or that it went stale) and which of its checkpoints the other modes show (a
TensorBoard log has none: the line says so). The metric chart's named metric, or a run's first
one when it has no loss, is given by its newest value.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text

from ...render.colors import hex_code
from ...render.fmt import LN2, fmt_duration, fmt_loss, fmt_rate
from ...runs import METRICS_NAME, fmt_age
from ...runs.named import MAX_COUNTED, MAX_NAMED
from .runs import TRAINING_STATES, Run

ICONS = {"running": "▶", "paused": "⏸", "starting": "…", "stopping": "■", "done": "✓", "stopped": "■",
         "diverged": "⚠", "failed": "✗", "live": "◉", "stale": "⚠", "waiting": "…", "new": "…"}


def idle_line(watch_roots: tuple[str, ...] = ()) -> Text:
    """The status line with no run: how to start one (or where watched runs will come from)."""
    t = Text(no_wrap=False, overflow="fold")
    roots = list(watch_roots)
    if roots:  # `rnn-tui watch runs/` on a folder with no run in it yet
        t.append("watching ", style="bold")
        t.append(", ".join(roots), style="bold")
        t.append(" · no run there yet: `rnn-tui train ... --out "
                 f"{roots[0].rstrip('/')}/NAME` (or --out the folder itself), or TensorBoard event files "
                 "written there, appear here", style="dim")
        return t
    t.append("idle", style="bold")
    t.append(" · space: start training with the form's settings · f: show/hide the form", style="dim")
    return t


def status_line(run: Run, unit: str, now: float, watcher=None, metric: str = "") -> Text:
    """One run's status line. ``unit``: the chart's loss unit; ``now``: the watcher's clock
    (ages); ``watcher``: the app's `runs.Watcher`, which knows whose checkpoint is shown;
    ``metric``: the named metric charted (its newest value is given)."""
    t = Text(no_wrap=False, overflow="fold")
    t.append(f"{ICONS.get(run.state, '')} {run.name} {run.state}", style=f"bold {hex_code(run.color)}")
    note = _before_metrics(run)
    if note is not None:
        t.append(note, style="dim")
        return t
    cols = run.cols
    step, steps = run.last_step, run.config.steps
    t.append(f" · step {step}/{steps}" if steps else f" · step {step}")
    if run.watch is None:
        t.append(f" · epoch {cols['epoch'][-1]:.2f}")
    losses = cols["loss"]
    finite = losses[np.isfinite(losses)]
    loss = float(losses[-1]) if losses.size else math.nan
    if run.watch is not None and run.watch.kind == "tensorboard" and finite.size:
        loss = float(finite[-1])  # its tags come at steps of their own: the newest loss logged
    if math.isfinite(loss):
        t.append(f" · loss {loss:.3f} nats · {loss / LN2:.3f} bits/tok")
        if unit == "ppl":
            t.append(f" · ppl {math.exp(min(loss, 700)):.2f}")
    elif finite.size or not run.named:
        t.append(" · loss nan")
    if not finite.size and not metric and run.named:  # a run with no loss: its first metric
        metric = next(iter(run.named))
    series = run.named.get(metric) if metric else None
    if series is not None and len(series):
        t.append(f" · {metric} {float(series['value'][-1]):.4g}")
    val = cols["val"][np.isfinite(cols["val"])]
    if val.size:
        t.append(f" · val {fmt_loss(float(val[-1]), unit)}")
    tps = cols["tps"][-20:]
    tps = tps[np.isfinite(tps)]
    if tps.size:  # one step's rate is noisy: the median of the last 20
        t.append(f" · {fmt_rate(float(np.median(tps)))} tok/s")
    if run.state in TRAINING_STATES and (run.watch is None or run.watch.has_checkpoints):
        t.append(f" · ETA {fmt_duration(run.eta())}")  # (a TensorBoard log never says its last step)
    if run.watch is not None:
        shown = watcher.shown if watcher is not None else None
        _watched_tail(t, run, now, shown[0] if shown is not None else None)
    return t


def _before_metrics(run: Run) -> str | None:
    """What the line says instead of numbers while a run has none (None once it has)."""
    watch = run.watch
    if watch is not None and run.state == "waiting":
        return (f" · waiting for {watch.path} to appear (start it: rnn-tui train CORPUS --out "
                f"{watch.path})")
    if len(run.cols) or run.named:
        return None
    if watch is not None and watch.kind == "tensorboard":
        return f" · {watch.error}" if watch.error else f" · no scalars yet in the event files of {watch.path}"
    if watch is not None:
        return f" · no metrics yet in {watch.path / METRICS_NAME}"
    return " · building the model…" if run.state == "starting" else ""


def _watched_tail(t: Text, run: Run, now: float, shown_watch) -> None:
    """How fresh a watched run's file is, and which of its checkpoints the other modes show."""
    watch = run.watch
    age = watch.age(now)
    tensorboard = watch.kind == "tensorboard"
    if run.state == "stale":
        t.append(f" · stale: no new {'event' if tensorboard else 'line'} for {fmt_age(age)}", style="bold yellow")
    elif age is not None:
        t.append(f" · updated {fmt_age(age)}{'' if age < 1.5 else ' ago'}", style="dim")
    left_out = watch.names.left_out
    if left_out:
        more = f"{left_out}+" if left_out >= MAX_COUNTED else str(left_out)
        t.append(f" · {more} more metrics not kept ({MAX_NAMED} are)", style="dim")
    if tensorboard:
        if watch.error:
            t.append(f" · {watch.error}", style="bold red")
        t.append(" · a TensorBoard log has no checkpoint: the other modes keep their model", style="dim")
        return
    if shown_watch is watch and not watch.error:
        ckpt = watch.ckpt_step
        t.append(f" · model: ckpt {ckpt}" if ckpt is not None else " · model: its checkpoint", style="dim")
    if watch.error:
        t.append(f" · checkpoint not loaded (kept the last one): {watch.error}", style="bold red")
