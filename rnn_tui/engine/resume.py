"""Continuing a saved run: the training state a run's latest checkpoint carries, and putting
it back into a Trainer.

Besides the weights, the latest checkpoint of a run (``engine/checkpoint.py`` writes it,
``train_state.safetensors`` + ``config.json["resume"]``) holds what the loop needs to go on
exactly where it stopped: the optimizer state, the hidden state carried between windows,
the position in the training stream, the best and last validation loss and the training
clock. ``training_state`` is what a save writes; ``continue_run`` builds the Trainer of
``Trainer.from_run`` and ``restore`` puts the state back. These functions read and set the
Trainer's loop state (its ``_state``, ``_val_step``, ``_wall``): they are its other half,
kept apart because resuming is a job of its own.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import fields
from pathlib import Path

import torch

from ..runs.layout import CONFIG_NAME, METRICS_NAME
from ..runs.metrics import trim_metrics
from .checkpoint import load_run
from .config import RESUMABLE, TrainConfig
from .errors import CheckpointError, ConfigError, RnnTuiError, quote

CARRY_NAMES = ("carry.h", "carry.c")  # the carried hidden state's tensors (c: LSTM only)


def continue_run(cls, run_dir, *, overrides: dict | None = None, corpus=None, on_metrics=None,
           dist=None, tensorboard: bool | None = False, cache_dir=None):
    """A `cls` (Trainer) that continues the run saved in `run_dir`: see ``Trainer.from_run``."""
    run_dir = Path(run_dir)
    # The weights, the training state and config.json of one save (a save committing meanwhile
    # cannot pair one checkpoint's weights with another's optimizer state).
    lm, tensors, info = load_run(run_dir, device="cpu")
    saved = lm.meta
    try:
        train = saved.get("train")
        config = TrainConfig.from_dict(train if isinstance(train, dict) else {})
    except (RnnTuiError, TypeError) as exc:
        raise CheckpointError(f"{run_dir / CONFIG_NAME} has a bad training config: {exc}") from None
    changes = dict(overrides or {})
    fixed = sorted(k for k, v in changes.items()
                   if k not in RESUMABLE and k != "corpus" and v != getattr(config, k, v))
    if fixed:
        what = ", ".join(f"{k} (the run has {getattr(config, k)!r}, asked {changes[k]!r})" for k in fixed)
        raise ConfigError(f"a resumed run keeps its configuration: {what} cannot change; "
                          f"start a new run to change it")
    unknown = sorted(set(changes) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"unknown training settings: {', '.join(unknown)}")
    trained_on = config.corpus
    config = dataclasses.replace(config, **{k: v for k, v in changes.items()
                                            if k in RESUMABLE or k == "corpus"})
    # Say which corpus the run knows: "the vocabulary has 28 tokens" alone is no help.
    hint = (f"the run in {run_dir} was trained on {trained_on!r}: resume without naming a corpus, "
            f"or name that text where it now lives" if config.corpus != trained_on
            else "was the text changed?")
    try:
        trainer = cls(config, run_dir=run_dir, corpus=corpus, model=lm.model, vocab=lm.vocab,
                      on_metrics=on_metrics, dist=dist, tensorboard=tensorboard, cache_dir=cache_dir)
    except ConfigError as exc:
        if "vocabulary" in str(exc):
            raise ConfigError(f"corpus {config.corpus!r} does not have the run's vocabulary ({hint})") from None
        raise
    if trainer.corpus.vocab != lm.vocab:
        raise ConfigError(f"corpus {config.corpus!r} does not have the vocabulary the run in {run_dir} "
                          f"was trained with ({hint})")
    restore(trainer, tensors, info, run_dir)
    if trainer.is_main:
        path = run_dir / METRICS_NAME
        try:  # lines past the checkpoint's step (a run that went on, then died) and a torn one
            trim_metrics(path, trainer.step)
        except OSError as exc:
            raise CheckpointError(f"cannot rewrite {path}: {exc.strerror or exc}") from None
    return trainer


def restore(trainer, tensors: dict[str, torch.Tensor], info: dict, run_dir: Path) -> None:
    """Put a saved training state (``load_resume_state``) back into `trainer`."""
    where = run_dir / CONFIG_NAME
    kind = type(trainer.optimizer).__name__
    if info.get("optimizer_class") != kind:
        raise CheckpointError(f"{where}: the saved optimizer state is for "
                              f"{quote(info.get('optimizer_class'))}, the run uses {kind}")
    stream = info.get("stream") if isinstance(info.get("stream"), dict) else {}
    step = _field(where, "step", info.get("step"), _is_count)
    epoch = _field(where, "stream.epoch", stream.get("epoch"), _is_count)
    window = _field(where, "stream.window", stream.get("window"), _is_count)
    best = _field(where, "best_val_loss", info.get("best_val_loss"), _is_loss)
    last = _field(where, "last_val_loss", info.get("last_val_loss"), _is_loss)
    val_step = _field(where, "val_step", info.get("val_step"), lambda v: v is None or _is_count(v))
    wall = _field(where, "wall_time", info.get("wall_time"),
                  lambda v: v is None or (_is_number(v) and math.isfinite(v) and v >= 0))
    if not window < trainer.train_stream.windows_per_epoch:
        raise CheckpointError(f"{where}: the saved position in the training text (epoch {epoch}, "
                              f"window {window}) does not fit the corpus: was the text changed?")
    fresh = [{k: v for k, v in g.items() if k != "params"} for g in trainer.optimizer.state_dict()["param_groups"]]
    try:
        state = optimizer_state_from_safe(tensors, info.get("optimizer") or {})
        _check_optimizer_state(trainer, state, fresh)
        trainer.optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{where}: the training state does not fit this run: "
                              f"{quote(str(exc), 200, repr_=False)}") from None
    trainer.train_stream.epoch, trainer.train_stream.window = epoch, window
    trainer.step = step
    trainer._state = _carry_from(trainer, tensors, info.get("carry"), where)
    trainer.best_val_loss = None if best is None else float(best)
    trainer.last_val_loss = None if last is None else float(last)
    trainer._val_step = val_step
    trainer._wall = float(wall or 0.0)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_loss(v) -> bool:
    return v is None or (_is_number(v) and math.isfinite(v))


def _field(where: Path, name: str, value, ok):
    """A field of config.json["resume"], or a CheckpointError naming it (a number that is text,
    a step that is negative or true...)."""
    if not ok(value):
        raise CheckpointError(f"{where}: the saved training state has a bad {name} ({quote(value)}): "
                              f"was config.json edited?")
    return value


def _kind(value):
    """What a hyperparameter is, to compare a saved one with the optimizer's own."""
    if value is None or isinstance(value, (bool, str)):
        return type(value).__name__
    if _is_number(value):
        return "number" if math.isfinite(value) else "not finite"
    if isinstance(value, (list, tuple)):
        return ("sequence", len(value), tuple(_kind(v) for v in value))
    return type(value).__name__


def _check_optimizer_state(trainer, state: dict, fresh: list[dict]) -> None:
    """The saved optimizer state has this optimizer's shape: as many param groups, each with
    the same settings of the same kinds (no lr that is text), and a moment of each
    parameter's own shape (a wrong one would only fail at the first step)."""
    groups = state["param_groups"]
    if len(groups) != len(fresh):
        raise ValueError(f"{len(groups)} param groups saved, the optimizer has {len(fresh)}")
    for saved, own in zip(groups, fresh):
        for key, value in own.items():  # a setting another torch version lacks is its default
            if key in saved and _kind(saved[key]) != _kind(value):
                raise ValueError(f"param group setting {key} is {quote(saved.get(key))}")
    params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    for index, entry in state["state"].items():
        if not 0 <= index < len(params):
            raise ValueError(f"state for parameter {index}, the optimizer has {len(params)}")
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[index].shape:
                raise ValueError(f"{key} of parameter {index} has shape {list(value.shape)}, "
                                 f"the parameter {list(params[index].shape)}")


def _carry_from(trainer, tensors, kind, where):
    """The saved carried state, on the trainer's device (under DDP: this rank's rows)."""
    if not kind:
        return None
    names = CARRY_NAMES if kind == "h,c" else CARRY_NAMES[:1]
    c = trainer.config
    want = (c.layers, c.batch, c.hidden)
    parts = []
    for name in names:
        t = tensors.get(name)
        if t is None or tuple(t.shape) != want:
            raise CheckpointError(f"{where}: the saved hidden state {name} does not have shape {list(want)}")
        if trainer._rows is not None:
            t = t[:, trainer._rows]
        parts.append(t.to(trainer.device, torch.float32).contiguous())
    return tuple(parts) if len(parts) == 2 else parts[0]


def training_state(trainer, carry) -> tuple[dict, dict]:
    """What `continue_run` needs besides the weights: (tensors, JSON-able info). `carry`: the carried
    hidden state of the whole batch, or None to start the rows from zeros."""
    tensors, opt_info = optimizer_state_to_safe(trainer.optimizer.state_dict())
    kind = None
    if carry is not None:
        parts = carry if isinstance(carry, tuple) else (carry,)
        for name, t in zip(CARRY_NAMES, parts):
            tensors[name] = t.detach().float()
        kind = "h,c" if isinstance(carry, tuple) else "h"
    info = {
        "step": trainer.step,
        "optimizer_class": type(trainer.optimizer).__name__,
        "optimizer": opt_info,
        "stream": {"epoch": trainer.train_stream.epoch, "window": trainer.train_stream.window},
        "carry": kind,
        "best_val_loss": trainer.best_val_loss,
        "last_val_loss": trainer.last_val_loss,
        "val_step": trainer._val_step,
        "wall_time": trainer._wall_now(),
        "world_size": trainer.dist.world_size if trainer.dist is not None else 1,
    }
    return tensors, info


# ------------------------------------------------------------------------- optimizer state
def optimizer_state_to_safe(state_dict: dict, prefix: str = "optimizer.") -> tuple[dict, dict]:
    """Split `optimizer.state_dict()` into (tensors for safetensors, JSON-able info).

    Tensors go under "<prefix><param index>.<name>"; non-tensor per-parameter values (SGD's
    momentum_buffer=None, ...) and the param groups' hyperparameters go in the JSON part.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, entry in state_dict.get("state", {}).items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{int(index)}.{key}"] = value.detach()
            elif value is None or isinstance(value, (bool, int, float, str)):
                scalars.setdefault(str(int(index)), {})[key] = value
            else:
                raise CheckpointError(f"optimizer state {key!r} of type {type(value).__name__} "
                                      "cannot be saved without pickle")
    groups, tuple_keys = [], set()
    for group in state_dict.get("param_groups", []):
        out = {}
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                value = value.item() if value.numel() == 1 else value.tolist()
            if isinstance(value, tuple):
                tuple_keys.add(key)
                value = list(value)
            out[key] = value
        groups.append(out)
    return tensors, {"param_groups": groups, "scalars": scalars, "tuple_keys": sorted(tuple_keys)}


def optimizer_state_from_safe(tensors: dict[str, torch.Tensor], info: dict,
                              prefix: str = "optimizer.") -> dict:
    """The inverse of `optimizer_state_to_safe`: a dict for `optimizer.load_state_dict`."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix):
            continue
        index, _, key = name[len(prefix):].partition(".")
        state.setdefault(int(index), {})[key] = value
    for index, entry in (info.get("scalars") or {}).items():
        state.setdefault(int(index), {}).update(entry)
    tuple_keys = set(info.get("tuple_keys") or ())
    groups = [{k: tuple(v) if k in tuple_keys and isinstance(v, list) else v for k, v in g.items()}
              for g in info.get("param_groups") or []]
    return {"state": state, "param_groups": groups}
