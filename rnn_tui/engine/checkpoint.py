"""Checkpoints: save a model with everything needed to read it again, load it back safely.

A checkpoint directory (a run directory itself, or its best/; the file names and the layout
of a run are ``rnn_tui.runs.layout``'s) holds::

    config.json         format_version, model, vocab, corpus, level, categories, train,
                        metrics (the summary keys of ``runs.metrics.SUMMARY_KEYS``), created,
                        tensors_sha256
    model.safetensors   the weights

Every checkpoint directory holds exactly `config.json` + `model.safetensors`, so
`load_model("RUN_DIR")` and `load_model("RUN_DIR/best")` work the same way.
`save_checkpoint(run_dir, ..., name="best")` writes `RUN_DIR/best/`; the default name
"model" writes into RUN_DIR itself.

Weights are stored with safetensors (never pickle, so loading a file cannot run code).
Each file is written to a temp file in the same directory, fsynced and os.replace'd into
place, and the directory is fsynced. Overwriting a checkpoint goes in three steps so that a
crash at any point leaves a complete one on disk:

1. the new weights -> `model.next.safetensors`   (the old checkpoint is untouched)
2. the new config.json, naming the new sha256    (the commit point)
3. `model.next.safetensors` -> `model.safetensors`

config.json records the sha256 of its weights, and the loader takes whichever of
`model.safetensors` / `model.next.safetensors` matches it, so a crash between 2 and 3 still
loads the new checkpoint, and one before 2 the old. A failed save removes its own leftovers,
and the next save first finishes (or discards) what a crashed one left behind.

Resumable checkpoints. The latest checkpoint of a training run (RUN_DIR itself, not best/)
also holds what `rnn-tui train --resume` needs to continue exactly:

    RUN_DIR/
        train_state.safetensors   optimizer tensors (Adam moments, step counts), the hidden
                                  state carried between windows (truncated BPTT)
        config.json["resume"]     its sha256, the step, the optimizer's param groups and
                                  scalar state, the position in the training stream, ...

It goes through the same three steps as the weights (`train_state.next.safetensors` first,
the config.json commit, then the rename), so weights, optimizer state and step always belong
together. Tensors are safetensors and everything else is JSON: nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..runs.files import TooLarge, atomic_write, fsync_dir, read_bounded, unlink_quietly
from ..runs.layout import (CONFIG_NAME, MAX_CONFIG_BYTES, NEXT_STATE_NAME, NEXT_WEIGHTS_NAME, STATE_NAME,
                           WEIGHTS_NAME)
from ..runs.metrics import SUMMARY_KEYS
from .device import pick_device
from .errors import CheckpointError, ConfigError
from .model import LoadedModel, ModelConfig, RNNLM, build_model

FORMAT_VERSION = 1
MAIN_NAME = "model"  # save_checkpoint(name=MAIN_NAME) writes into the run directory itself
BUNDLED_MODELS = ("rnn", "lstm", "gru")
DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "defaults"


# ------------------------------------------------------------------------- saving
def _jsonable(value):
    """JSON has no NaN/inf: write them as null rather than emit invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def checkpoint_dir(run_dir: str | os.PathLike, name: str = MAIN_NAME) -> Path:
    """Where `save_checkpoint(run_dir, ..., name=name)` writes."""
    run_dir = Path(run_dir)
    if name == MAIN_NAME:
        return run_dir
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"bad checkpoint name {name!r}: use a plain name such as 'best'")
    return run_dir / name


def save_checkpoint(run_dir: str | os.PathLike, model: RNNLM, vocab, meta: dict | None = None,
                    name: str = MAIN_NAME, resume_tensors: dict[str, torch.Tensor] | None = None,
                    resume_info: dict | None = None) -> Path:
    """Save `model` + `vocab` (+ meta: corpus, level, categories, train, metrics) atomically.

    `resume_tensors` / `resume_info` (the Trainer's optimizer and loop state) are written in
    the same atomic save, to `train_state.safetensors` and config.json["resume"]; a save
    without them removes any older training state from the directory.

    Returns the checkpoint directory (RUN_DIR for name="model", RUN_DIR/<name> otherwise),
    which `load_model` accepts.
    """
    meta = dict(meta or {})
    target = checkpoint_dir(run_dir, name)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint directory {target}: {exc.strerror or exc}") from None
    try:
        _recover(target)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {target}: {exc.strerror or exc}") from None
    # safetensors wants contiguous CPU tensors (it serialises them right here, to bytes).
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    blob = st_save(tensors, metadata={"format": "pt", "rnn_tui_format": str(FORMAT_VERSION)})
    metrics = meta.pop("metrics", None) or {}
    config = {
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "vocab": vocab.to_dict(),
        "corpus": meta.pop("corpus", None),
        "level": meta.pop("level", getattr(vocab, "level", None)),
        "categories": meta.pop("categories", None),
        "train": meta.pop("train", None),
        "metrics": {k: metrics.get(k) for k in SUMMARY_KEYS} | {
            k: v for k, v in metrics.items() if k not in SUMMARY_KEYS},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
    }
    # Re-saving a loaded model's meta must not carry over what describes the old file.
    for key in ("source", "format_version", "tensors_sha256", "model", "vocab", "created", "resume"):
        meta.pop(key, None)
    config.update(meta)  # anything extra the caller wants kept
    state_blob = None
    if resume_tensors is not None or resume_info is not None:
        state = {k: v.detach().to("cpu").contiguous() for k, v in (resume_tensors or {}).items()}
        state_blob = st_save(state, metadata={"format": "pt", "rnn_tui_format": str(FORMAT_VERSION)})
        config["resume"] = {**(resume_info or {}), "sha256": hashlib.sha256(state_blob).hexdigest()}
    text = json.dumps(_jsonable(config), indent=2, ensure_ascii=False) + "\n"
    nxt, state_nxt = target / NEXT_WEIGHTS_NAME, target / NEXT_STATE_NAME
    try:
        try:
            atomic_write(nxt, blob)  # 1: weights first, beside the old ones
            if state_blob is not None:
                atomic_write(state_nxt, state_blob)  # 1b: the training state beside them
            atomic_write(target / CONFIG_NAME, text.encode("utf-8"))  # 2: commit
        except BaseException:
            unlink_quietly(nxt)  # never committed: the old checkpoint stays as it was
            unlink_quietly(state_nxt)
            raise
        os.replace(nxt, target / WEIGHTS_NAME)  # 3: back to the usual names
        if state_blob is not None:
            os.replace(state_nxt, target / STATE_NAME)
        else:
            unlink_quietly(target / STATE_NAME)  # an older run's state no longer matches
        fsync_dir(target)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {target}: {exc.strerror or exc}") from None
    return target


def _sha_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() if hasattr(hashlib, "file_digest") \
                else hashlib.sha256(fh.read()).hexdigest()
    except FileNotFoundError:
        return None


def _recover(target: Path) -> None:
    """Finish or discard what a crashed save left behind, before a new save reuses the names.

    A "next" file that config.json names (crash after the commit point) is renamed into place;
    one it does not name (crash before the commit point) is deleted. Without this a new save
    would overwrite a committed "next" file and, if it crashed too, leave nothing loadable.
    """
    pairs = ((NEXT_WEIGHTS_NAME, WEIGHTS_NAME, "tensors_sha256"), (NEXT_STATE_NAME, STATE_NAME, None))
    if not any((target / nxt).exists() for nxt, _, _ in pairs):
        return
    try:
        config = json.loads(read_bounded(target / CONFIG_NAME, MAX_CONFIG_BYTES))
    except (OSError, ValueError, RecursionError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    for nxt, final, key in pairs:
        if not (target / nxt).exists():
            continue
        expected = config.get(key) if key else (config.get("resume") or {}).get("sha256")
        if expected and _sha_file(target / nxt) == expected:
            os.replace(target / nxt, target / final)
        else:
            unlink_quietly(target / nxt)
    fsync_dir(target)


# ------------------------------------------------------------------------- loading
def _resolve(spec) -> Path:
    """Turn a spec into a checkpoint directory (it may not exist; the caller checks)."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file():
        if path.name not in (CONFIG_NAME, WEIGHTS_NAME):
            raise CheckpointError(f"{text} is a file, not a checkpoint: give a run directory "
                                  f"(or its {CONFIG_NAME}), or a bundled name ({', '.join(BUNDLED_MODELS)})")
        return path.parent  # config.json or model.safetensors given directly
    if path.is_dir() and ((path / CONFIG_NAME).exists() or text not in BUNDLED_MODELS):
        return path
    if text in BUNDLED_MODELS:
        bundled = DEFAULTS_DIR / text
        if not (bundled / CONFIG_NAME).is_file() or not (bundled / WEIGHTS_NAME).is_file():
            raise CheckpointError(
                f"bundled model {text!r} is missing from {bundled}: "
                f"regenerate the defaults with `python scripts/make_defaults.py`"
            )
        return bundled
    return path


def _read_config(directory: Path) -> dict:
    cfg_path = directory / CONFIG_NAME
    if not directory.exists():
        names = ", ".join(BUNDLED_MODELS)
        raise CheckpointError(f"no checkpoint at {directory}: the directory does not exist "
                              f"(give a run directory or one of the bundled models: {names})")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory} is not a directory")
    if not cfg_path.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {CONFIG_NAME} (not a run directory, "
                              f"or the save was interrupted)")
    try:
        config = json.loads(read_bounded(cfg_path, MAX_CONFIG_BYTES).decode("utf-8"))
    except TooLarge:
        raise CheckpointError(f"{cfg_path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: "
                              f"not a checkpoint config") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON (truncated or edited?): {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {cfg_path}: {exc.strerror or exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path} is not a checkpoint config (expected a JSON object)")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{cfg_path} has no valid format_version (is it an rnn-tui checkpoint?)")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path} has format_version {version}, newer than this rnn-tui "
                              f"reads ({FORMAT_VERSION}): upgrade rnn-tui")
    if version < 1:
        raise CheckpointError(f"{cfg_path} has unknown format_version {version}")
    for key in ("model", "vocab"):
        if not isinstance(config.get(key), dict):
            raise CheckpointError(f"{cfg_path} has no {key!r} section")
    return config


def _read_weights(directory: Path, config: dict) -> dict[str, torch.Tensor]:
    return _read_tensors(directory, config.get("tensors_sha256"), WEIGHTS_NAME, NEXT_WEIGHTS_NAME, "weights")


def _read_tensors(directory: Path, expected: str | None, final: str, next_name: str,
                  what: str) -> dict[str, torch.Tensor]:
    w_path = directory / final
    # A save interrupted after its commit point leaves the new file under the "next" name;
    # the sha256 says which file belongs to this config. The last retry covers a save
    # finishing (renaming "next" over the usual name) while we read.
    candidates = [final, next_name, final] if expected else [final]
    blob, seen = None, False
    for name in candidates:
        try:
            data = (directory / name).read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckpointError(f"cannot read {directory / name}: {exc.strerror or exc}") from None
        seen = True
        if blob is None:
            blob = data  # judged below when nothing matches
        if expected and hashlib.sha256(data).hexdigest() == expected:
            blob = data
            break
    else:
        if not seen:
            raise CheckpointError(f"checkpoint {directory} has no {what} file {final}")
    try:
        tensors = st_load(blob)
    except Exception as exc:  # safetensors raises its own error type (and sometimes others)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{what} file {w_path} is truncated or corrupt "
                              f"({len(blob)} bytes): {detail}") from None
    if expected and hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(f"{what} file {w_path} does not match the sha256 recorded in "
                              f"{CONFIG_NAME}: it was replaced or edited after saving")
    return tensors


def load_resume_state(spec) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config.json, training-state tensors, config["resume"]) of a run directory's latest checkpoint.

    Raises CheckpointError when the directory has no training state (a best/ checkpoint, a
    model saved by hand, or a run from before resumable checkpoints).
    """
    directory = _resolve(spec)
    config = _read_config(directory)
    info = config.get("resume")
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
        raise CheckpointError(f"checkpoint {directory} has no training state to resume from (only "
                              f"the latest checkpoint of a run directory has one; best/ does not)")
    tensors = _read_tensors(directory, info["sha256"], STATE_NAME, NEXT_STATE_NAME, "training state")
    return config, tensors, info


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


def _check_shapes(directory: Path, model: RNNLM, tensors: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    problem = None
    for key, ref in expected.items():
        if key not in tensors:
            problem = f"{key} is missing from the weights"
        elif tuple(tensors[key].shape) != tuple(ref.shape):
            got, want = list(tensors[key].shape), list(ref.shape)
            problem = f"{key} has shape {got}, the config expects {want}"
        if problem:
            break
    if problem is None:
        extra = sorted(set(tensors) - set(expected))
        if extra:
            problem = f"the weights have tensors the config does not: {', '.join(extra[:3])}"
    if problem:
        raise CheckpointError(f"checkpoint {directory} does not match its config: {problem}")


def load_model(spec, device: str | torch.device | None = "auto") -> LoadedModel:
    """Load a checkpoint: a run directory, its config.json, or a bundled name (rnn, lstm, gru).

    Raises CheckpointError (one line naming the path) for anything missing or inconsistent.
    """
    from .corpus import Vocab  # imported here so this module loads without the corpus code

    directory = _resolve(spec)
    config = _read_config(directory)
    cfg_path = directory / CONFIG_NAME
    try:
        model_cfg = ModelConfig.from_dict(config["model"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{cfg_path} has a bad model config: {exc}") from None
    try:
        vocab = Vocab.from_dict(config["vocab"])
    except Exception as exc:  # any shape of bad vocab dict is the checkpoint's fault
        raise CheckpointError(f"{cfg_path} has a bad vocab: {exc}") from None
    n_tokens = len(vocab.tokens)
    if n_tokens != model_cfg.vocab_size:
        raise CheckpointError(f"checkpoint {directory} does not match its config: the vocab has "
                              f"{n_tokens} tokens, the model expects {model_cfg.vocab_size}")
    tensors = _read_weights(directory, config)
    # A fixed seed keeps construction deterministic; every value is overwritten by the load.
    model = build_model(model_cfg, seed=0)
    _check_shapes(directory, model, tensors)
    model.load_state_dict(tensors)
    model.eval()
    dev = pick_device(device if not isinstance(device, torch.device) else str(device))
    model.to(dev)
    meta = dict(config)
    meta["source"] = str(directory)
    return LoadedModel(model=model, vocab=vocab, meta=meta)


# ------------------------------------------------------------------------- info
def _count(params) -> dict:
    total = trainable = 0
    for p in params:
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return {"total": total, "trainable": trainable, "frozen": total - trainable}


def describe(lm: LoadedModel) -> dict:
    """Everything `rnn-tui info` prints about a loaded model, as plain JSON-able values."""
    model, cfg, meta = lm.model, lm.config, lm.meta
    parts = {
        "embedding": _count(model.embed.parameters()),
        "recurrent": _count(model.rnn.parameters()),
        "head": _count(model.head.parameters()),
    }
    # Flat dicts of numbers print well as one `key=value, ...` line in `rnn-tui info`.
    parameters = {**_count(model.parameters()), **{k: v["total"] for k, v in parts.items()}}
    metrics = meta.get("metrics") or {}
    return {
        "cell": cfg.cell,
        "vocab_size": cfg.vocab_size,
        "embed": cfg.embed,
        "hidden": cfg.hidden,
        "layers": cfg.layers,
        "nonlinearity": cfg.nonlinearity,
        "init": cfg.init,
        "spectral_radius": cfg.spectral_radius,
        "dropout": cfg.dropout,
        "level": meta.get("level") or getattr(lm.vocab, "level", None),
        "corpus": meta.get("corpus"),
        "parameters": parameters,
        "trainable_by_part": {k: v["trainable"] for k, v in parts.items()},
        "metrics": {k: metrics.get(k) for k in SUMMARY_KEYS},
        "train": meta.get("train"),
        "created": meta.get("created"),
        "source": meta.get("source"),
        "device": str(lm.device),
    }
