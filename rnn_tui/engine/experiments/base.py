"""What every experiment shares: the Experiment record and its registry, the settings checks,
the result base class, and the run context (stop flag, progress, training) its run receives.

An experiment module registers itself by decorating its run function:

    @experiment("parity", ParitySettings, ParityResult, explanation=(line1, line2),
                quick=dict(steps=200))
    def run_parity(s: ParitySettings, ctx: RunContext) -> dict: ...

The run returns the result's own fields as a dict; `Experiment.run` adds what ran, how long it
took and whether it was stopped, and freezes it all into the result type.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np
import torch

from ..config import MAX_INT, MAX_SEED
from ..corpus import Corpus
from ..errors import ConfigError, quote
from ..probes import ProbeResult
from ..train import TrainConfig, Trainer

Progress = Callable[[float, str], None]

# A text the gradient-by-timestep measurements read (init-schemes, spectral).
PROBE_TEXT = ("the cat that we saw yesterday was happy. the girl reads the book. "
              "the lion chases the mouse. the dragon eats the man.")


# ============================================================================ registry
@dataclass(frozen=True)
class Experiment:
    name: str
    explanation: tuple[str, str]  # two lines for lists and headers
    settings_type: type
    result_type: type
    quick: dict  # overrides for a smoke run
    _runner: Callable[[Any, RunContext], dict]

    def settings(self, overrides: dict | None = None, quick: bool = False):
        """Default settings (or the quick ones), with `overrides` (a dict, e.g. from JSON)."""
        base = self.settings_type()
        values = dict(self.quick) if quick else {}
        values.update(overrides or {})
        known = {f.name: f for f in fields(self.settings_type)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"experiment {self.name!r} has no setting {', '.join(unknown)}: "
                              f"it has {', '.join(known)}")
        values = {k: _coerce(v, getattr(base, k)) for k, v in values.items()}
        s = replace(base, **values)
        _check_settings(s)
        return s

    def run(self, settings=None, stop: threading.Event | None = None, progress: Progress | None = None,
            *, threads: int | None = 1):
        """Run headless and return the frozen result (see the package doc)."""
        if settings is None:
            settings = self.settings()
        elif isinstance(settings, dict):
            settings = self.settings(settings)
        elif not isinstance(settings, self.settings_type):
            raise ConfigError(f"experiment {self.name!r} takes {self.settings_type.__name__}, "
                              f"got {type(settings).__name__}")
        else:
            _check_settings(settings)
        ctx = RunContext(stop, progress)
        t0 = time.perf_counter()
        with _Threads(threads):
            data = self._runner(settings, ctx)
        return self.result_type(experiment=self.name, settings=asdict(settings),
                                seconds=time.perf_counter() - t0, stopped=ctx.stopped, **data)


# name -> Experiment, in the order the modules register (the order of lists and the lab).
EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, settings_type: type, result_type: type, *, explanation: tuple[str, str],
               quick: dict | None = None) -> Callable:
    """Register the decorated `run(settings, ctx) -> dict` as the experiment `name`."""
    def register(run):
        if name in EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is registered twice")
        EXPERIMENTS[name] = Experiment(name, explanation, settings_type, result_type, dict(quick or {}), run)
        return run

    return register


def get_experiment(name: str) -> Experiment:
    key = str(name).strip().lower()
    if key not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}: choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[key]


def run_experiment(name: str, settings: dict | None = None, *, quick: bool = False,
                   stop: threading.Event | None = None, progress: Progress | None = None):
    """get_experiment(name).run(...) with dict settings layered over the defaults (or quick ones)."""
    exp = get_experiment(name)
    return exp.run(exp.settings(settings, quick=quick), stop=stop, progress=progress)


# ============================================================================ settings
def _check_settings(s) -> None:
    """Common checks: whole numbers are whole and positive, tuples are not empty."""
    for f in fields(s):
        v = getattr(s, f.name)
        if f.name in ("seed",):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEED:
                raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {quote(v)}")
        elif isinstance(f.default, bool):
            if not isinstance(v, bool):
                raise ConfigError(f"{f.name} must be true or false, got {quote(v)}")
        elif isinstance(f.default, int) and not isinstance(f.default, bool):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{f.name} must be a positive whole number, got {quote(v)}")
            if v > MAX_INT:
                raise ConfigError(f"{f.name} must be at most {MAX_INT:,}, got {quote(v)}")
        elif isinstance(f.default, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"{f.name} must be a positive number, got {quote(v)}")
        elif isinstance(f.default, tuple):
            if not isinstance(v, tuple) or not v:
                raise ConfigError(f"{f.name} must be a non-empty list, got {quote(v)}")


def _coerce(value, default):
    """JSON-ish input (lists) to the settings' own types (tuples)."""
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def choose(name: str, value, options) -> None:
    """A ConfigError unless value is one of options (for the settings the checks cannot know)."""
    if value not in options:
        raise ConfigError(f"unknown {name} {value!r}: choose one of {', '.join(map(str, options))}")


# ============================================================================ results
@dataclass(frozen=True, eq=False, kw_only=True)
class ExperimentResult(ProbeResult):
    """Shared by every experiment's result: what ran, how long, and whether it was stopped.

    A subclass is made a frozen, keyword-only dataclass of the fields it annotates, as this
    class is: every result is declared the same way, with no decorator of its own.
    """

    experiment: str = ""
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0
    stopped: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True, eq=False, kw_only=True)(cls)

    def findings(self) -> list[str]:
        """Short measured statements, one per line."""
        return []

    def table(self) -> list[str]:
        """The main numbers as text rows."""
        return []

    def summary(self) -> str:
        head = f"{self.experiment}: {self.seconds:.1f} s" + ("  (stopped early)" if self.stopped else "")
        return "\n".join([head, *self.table(), *("* " + f for f in self.findings())])

    def to_json(self) -> dict:
        data = super().to_json()
        data["findings"] = self.findings()
        return data


def nanmean(x) -> float:
    """Mean of the measured values; NaN (without a warning) when nothing was measured."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def stack_padded(rows: list[np.ndarray], width: int | None = None) -> np.ndarray:
    """Stack 1-D arrays of unequal length into [R, width], NaN-padded."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, :min(len(r), width)] = r[:width]
    return out


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """A 2-D array with NaN rows added up to `rows` (the runs a stop cut off)."""
    out = np.full((rows, a.shape[1] if a.ndim == 2 else 0), np.nan)
    out[:len(a)] = a
    return out


def pad_1d(a: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[:len(a)] = a
    return out


# ============================================================================ running
class RunContext:
    """Stop flag and progress reporting for one run, mapped onto a sub-range of [0, 1]."""

    def __init__(self, stop: threading.Event | None, progress: Progress | None, lo=0.0, hi=1.0):
        self.stop = stop
        self.progress = progress
        self.lo, self.hi = lo, hi

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def report(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            f = min(1.0, max(0.0, fraction))
            self.progress(self.lo + (self.hi - self.lo) * f, message)

    def span(self, lo: float, hi: float) -> RunContext:
        w = self.hi - self.lo
        return RunContext(self.stop, self.progress, self.lo + w * lo, self.lo + w * hi)

    def part(self, i: int, n: int) -> RunContext:
        return self.span(i / n, (i + 1) / n)

    def train(self, cfg: TrainConfig, corpus: Corpus, label: str, model=None,
              on_metrics: Callable | None = None) -> Trainer:
        """Train to cfg.steps (or until stopped), reporting progress about 20 times.

        The returned trainer carries the run's TrainResult as `.result`."""
        trainer = Trainer(cfg, corpus=corpus, model=model)
        every = max(1, cfg.steps // 20)

        def hook(m):
            if on_metrics is not None:
                on_metrics(m)
            if m.step % every == 0 or m.step == cfg.steps:
                self.report(m.step / max(1, cfg.steps), f"{label}: step {m.step}/{cfg.steps} loss {m.loss:.3f}")

        trainer.on_metrics = hook
        self.report(0.0, f"{label}: training")
        trainer.result = trainer.run(stop=self.stop)
        return trainer


def per_step(trainer: Trainer, attr: str = "loss") -> np.ndarray:
    """One training metric (loss, grad_norm, step...) of every step so far, float64."""
    return np.asarray([getattr(m, attr) for m in trainer.history], dtype=np.float64)


def final_loss(trainer: Trainer) -> float:
    v = trainer.last_val_loss
    return float("nan") if v is None else float(v)


_THREADS_LOCK = threading.Lock()


class _Threads:
    """Set torch's CPU thread count for a run and put it back afterwards."""

    def __init__(self, n: int | None):
        self.n = n
        self.before = None

    def __enter__(self):
        if self.n:
            with _THREADS_LOCK:
                self.before = torch.get_num_threads()
                torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.before is not None:
            with _THREADS_LOCK:
                torch.set_num_threads(self.before)
