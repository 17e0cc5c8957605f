"""Checkpoints: save a model with everything needed to read it again, load it back safely.

Layout of a run directory::

    RUN_DIR/
        config.json         the main (latest) checkpoint: format_version, model, vocab, corpus,
        model.safetensors   level, categories, train, metrics, created, tensors_sha256
        metrics.jsonl       one JSON object per logged training step (written by train.py)
        best/
            config.json     the checkpoint with the lowest validation loss so far
            model.safetensors

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
loads the new checkpoint, and one before 2 the old. A failed save removes its own leftovers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .device import pick_device
from .errors import CheckpointError, ConfigError
from .model import LoadedModel, ModelConfig, RNNLM, build_model

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
NEXT_WEIGHTS_NAME = "model.next.safetensors"  # only between steps 1 and 3 of a save
MAIN_NAME = "model"  # save_checkpoint(name=MAIN_NAME) writes into the run directory itself
BUNDLED_MODELS = ("rnn", "lstm", "gru")
DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "defaults"
METRIC_KEYS = ("step", "train_loss", "val_loss", "best_val_loss", "bits_per_token",
               "tokens_per_s", "wall_time_s")


# ------------------------------------------------------------------------- saving
def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to `path` so a reader sees either the old file or the whole new one."""
    # Not tempfile.mkstemp: its files are 0600. Mode 0666 lets the kernel apply the umask, so a
    # checkpoint gets the permissions of any other file the user writes.
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(Path(tmp))
        raise
    _fsync_dir(path.parent)


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
                    name: str = MAIN_NAME) -> Path:
    """Save `model` + `vocab` (+ meta: corpus, level, categories, train, metrics) atomically.

    Returns the checkpoint directory (RUN_DIR for name="model", RUN_DIR/<name> otherwise),
    which `load_model` accepts.
    """
    meta = dict(meta or {})
    target = checkpoint_dir(run_dir, name)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint directory {target}: {exc.strerror or exc}") from None
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
        "metrics": {k: metrics.get(k) for k in METRIC_KEYS} | {
            k: v for k, v in metrics.items() if k not in METRIC_KEYS},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
    }
    # Re-saving a loaded model's meta must not carry over what describes the old file.
    for key in ("source", "format_version", "tensors_sha256", "model", "vocab", "created"):
        meta.pop(key, None)
    config.update(meta)  # anything extra the caller wants kept
    text = json.dumps(_jsonable(config), indent=2, ensure_ascii=False) + "\n"
    nxt = target / NEXT_WEIGHTS_NAME
    try:
        _atomic_write(nxt, blob)  # 1: weights first, beside the old ones
        try:
            _atomic_write(target / CONFIG_NAME, text.encode("utf-8"))  # 2: commit
        except BaseException:
            _unlink_quietly(nxt)  # never committed: the old checkpoint stays as it was
            raise
        os.replace(nxt, target / WEIGHTS_NAME)  # 3: back to the usual name
        _fsync_dir(target)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {target}: {exc.strerror or exc}") from None
    return target


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------------------------- loading
def _resolve(spec) -> Path:
    """Turn a spec into a checkpoint directory (it may not exist; the caller checks)."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file():
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
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
    w_path = directory / WEIGHTS_NAME
    expected = config.get("tensors_sha256")
    # A save interrupted after its commit point leaves the new weights under the "next" name;
    # the sha256 says which file belongs to this config. The last retry covers a save
    # finishing (renaming "next" over the usual name) while we read.
    candidates = [WEIGHTS_NAME, NEXT_WEIGHTS_NAME, WEIGHTS_NAME] if expected else [WEIGHTS_NAME]
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
            raise CheckpointError(f"checkpoint {directory} has no weights file {WEIGHTS_NAME}")
    try:
        tensors = st_load(blob)
    except Exception as exc:  # safetensors raises its own error type (and sometimes others)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"weights file {w_path} is truncated or corrupt "
                              f"({len(blob)} bytes): {detail}") from None
    if expected and hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(f"weights file {w_path} does not match the sha256 recorded in "
                              f"{CONFIG_NAME}: it was replaced or edited after saving")
    return tensors


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
        "metrics": {k: metrics.get(k) for k in METRIC_KEYS},
        "train": meta.get("train"),
        "created": meta.get("created"),
        "source": meta.get("source"),
        "device": str(lm.device),
    }
