"""Checkpoints: save a model with everything needed to read it again, load it back safely.

A checkpoint directory (a run directory itself, or its best/; the file names and the layout
of a run are ``rnn_tui.runs.layout``'s) holds::

    config.json         format_version, model, vocab, corpus, level, categories, train,
                        metrics (the summary keys of ``runs.metrics.SUMMARY_KEYS``), created,
                        tensors_sha256, config_sha256
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
and the next save first finishes (or discards) what a crashed one left behind; the next save
or load also removes the temp files of a save that was killed.

Integrity (format 2). ``tensors_sha256`` ties config.json to its weights; ``config_sha256``
covers what decides what the weights mean and how the run goes on (the sections ``HASHED``:
model, vocab, train, resume and tensors_sha256), so swapping two vocabulary tokens or
dropping the weights' hash is refused, not loaded. A checkpoint without its hashes is never
loaded. Format 1 (before config_sha256) still loads, its weights checked; the weights file
says which format wrote it, so a format-2 checkpoint cannot pass for format 1. The hashes
catch accidents, edits and mixed-up files, not a forger, who can recompute them: what a
loaded checkpoint can do is bounded instead (see the README's Security section).

Loading reads nothing it has not bounded first: config.json (at most MAX_CONFIG_BYTES, a
regular file), then the model's shapes from it, checked against the safetensors header
(``engine/tensorfile.py``) before the weights are read (their size follows from the shapes)
or a model is built (on the meta device, then given the loaded tensors). A save that runs
while a checkpoint is being loaded can replace the files between two reads; the loader then
reads config.json again, and only a problem that persists while config.json stays the same
is an error.

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

import dataclasses
import hashlib
import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..runs.files import (TooLarge, atomic_write, fsync_dir, open_regular, read_bounded, real_dir,
                          remove_dead_temps, unlink_quietly)
from ..runs.layout import (CONFIG_NAME, MAX_CONFIG_BYTES, NEXT_STATE_NAME, NEXT_WEIGHTS_NAME, STATE_NAME,
                           TOKENIZER_NAME, WEIGHTS_NAME)
from ..runs.metrics import SUMMARY_KEYS
from .device import pick_device
from .errors import CheckpointError, ConfigError, RnnTuiError, quote
from .model import LoadedModel, ModelConfig, RNNLM, freeze_reservoir
from .tensorfile import FLOAT_DTYPES, Header, TensorFileError, read_blob, read_header, shape_problem

FORMAT_VERSION = 2
MAIN_NAME = "model"  # save_checkpoint(name=MAIN_NAME) writes into the run directory itself
BUNDLED_MODELS = ("rnn", "lstm", "gru")
DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "defaults"
# What config_sha256 covers: what decides what the weights mean and how a run goes on.
HASHED = ("model", "vocab", "train", "resume", "tensors_sha256")
# Keys a re-save of a loaded model's meta must not carry over: they describe the old files.
_DESCRIBES_FILES = ("source", "format_version", "tensors_sha256", "config_sha256", "model", "vocab",
                    "created", "resume")
LOAD_ATTEMPTS = 5  # a save replacing the files while we read: read config.json again, this often


# ------------------------------------------------------------------------- hashes
def _canonical(value) -> bytes:
    """The bytes a hash of a JSON value is taken over: the same for the value saved and the
    value read back (sorted keys, no spaces, ASCII; floats round-trip exactly)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=True).encode("ascii")


def config_digest(config: dict) -> str:
    """The sha256 of the HASHED sections of a checkpoint config (config_sha256)."""
    return hashlib.sha256(_canonical({k: config.get(k) for k in HASHED})).hexdigest()


def _is_sha(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


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
    which `load_model` accepts. Writes stay inside RUN_DIR: a `best/` that is a symbolic link
    is refused (CheckpointError), never written through.
    """
    meta = dict(meta or {})
    target = checkpoint_dir(run_dir, name)
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        if target != Path(run_dir):
            real_dir(target)  # best/: not a link to somewhere else
    except OSError as exc:
        raise CheckpointError(f"cannot create checkpoint directory {target}: {exc.strerror or exc}") from None
    try:
        remove_dead_temps(target)
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
    state_blob = None
    if resume_tensors is not None or resume_info is not None:
        state = {k: v.detach().to("cpu").contiguous() for k, v in (resume_tensors or {}).items()}
        state_blob = st_save(state, metadata={"format": "pt", "rnn_tui_format": str(FORMAT_VERSION)})
        config["resume"] = {**(resume_info or {}), "sha256": hashlib.sha256(state_blob).hexdigest()}
    # Anything extra the caller wants kept, but never what describes the old files.
    config.update({k: v for k, v in meta.items() if k not in config and k not in _DESCRIBES_FILES})
    config = _jsonable(config)
    try:
        config["config_sha256"] = config_digest(config)
    except (RecursionError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot save checkpoint {target}: its metadata is not plain JSON "
                              f"({type(exc).__name__})") from None
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:  # it could not be loaded again
        raise CheckpointError(f"cannot save checkpoint {target}: {_too_big(len(text.encode('utf-8')), vocab)}")
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
    if getattr(vocab, "tokenizer", None) and target == Path(run_dir):
        try:
            _write_tokenizer(target, vocab.tokenizer)
        except OSError as exc:
            raise CheckpointError(f"the checkpoint {target} is saved, but its {TOKENIZER_NAME} could not be "
                                  f"written: {exc.strerror or exc}") from None
    return target


def _too_big(size: int, vocab) -> str:
    what = " and its tokenizer" if getattr(vocab, "tokenizer", None) else ""
    return (f"its config.json would be {size / 2**20:.0f} MiB (a vocabulary of {len(vocab.tokens):,} tokens{what}), "
            f"more than the {MAX_CONFIG_BYTES >> 20} MiB a checkpoint may have: use a smaller vocabulary")


def check_vocab_fits(vocab) -> None:
    """Before training: a vocabulary too large for its checkpoint's config.json is refused now,
    not at the first save (the config holds the vocabulary, and a subword one's tokenizer)."""
    size = len(json.dumps(vocab.to_dict(), indent=2, ensure_ascii=False).encode("utf-8")) + (64 << 10)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(_too_big(size, vocab))


def _write_tokenizer(run_dir: Path, text: str) -> None:
    """RUN/tokenizer.json: a subword run's tokenizer as the tokenizers library writes it, for the
    user's own tools (loading reads config.json's copy, which the hashes cover)."""
    data = text.encode("utf-8")
    path = run_dir / TOKENIZER_NAME
    try:
        if read_bounded(path, len(data)) == data:
            return
    except (OSError, TooLarge):
        pass
    atomic_write(path, data)


def _sha_file(path: Path) -> str | None:
    """The sha256 of a regular file (None when missing or not a regular file)."""
    try:
        with open_regular(path) as fh:
            digest = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
            return digest.hexdigest()
    except OSError:
        return None


def _recover(target: Path) -> None:
    """Finish or discard what a crashed save left behind, before a new save reuses the names.

    A "next" file that config.json names (crash after the commit point) is renamed into place;
    one it does not name (crash before the commit point) is deleted. Without this a new save
    would overwrite a committed "next" file and, if it crashed too, leave nothing loadable.
    """
    pairs = ((NEXT_WEIGHTS_NAME, WEIGHTS_NAME, "tensors_sha256"), (NEXT_STATE_NAME, STATE_NAME, None))
    if not any(os.path.lexists(target / nxt) for nxt, _, _ in pairs):
        return
    try:
        config = json.loads(read_bounded(target / CONFIG_NAME, MAX_CONFIG_BYTES))
    except (OSError, ValueError, RecursionError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    for nxt, final, key in pairs:
        if not os.path.lexists(target / nxt):
            continue
        resume = config.get("resume") if isinstance(config.get("resume"), dict) else {}
        expected = config.get(key) if key else resume.get("sha256")
        if _is_sha(expected) and _sha_file(target / nxt) == expected:
            os.replace(target / nxt, target / final)
        else:
            unlink_quietly(target / nxt)
    fsync_dir(target)


# ------------------------------------------------------------------------- loading
def _resolve(spec) -> Path:
    """Turn a spec into a checkpoint directory (it may not exist; the caller checks)."""
    text = str(spec)
    path = Path(text).expanduser()
    try:
        if path.is_file():
            if path.name not in (CONFIG_NAME, WEIGHTS_NAME):
                raise CheckpointError(f"{quote(text, 200, repr_=False)} is a file, not a checkpoint: give a run directory "
                                      f"(or its {CONFIG_NAME}), or a bundled name ({', '.join(BUNDLED_MODELS)})")
            return path.parent  # config.json or model.safetensors given directly
        if path.is_dir() and ((path / CONFIG_NAME).exists() or text not in BUNDLED_MODELS):
            return path
    except OSError as exc:  # a directory we may not look into
        raise CheckpointError(f"cannot read {quote(text, 200, repr_=False)}: {exc.strerror or exc}") from None
    if text in BUNDLED_MODELS:
        bundled = DEFAULTS_DIR / text
        if not (bundled / CONFIG_NAME).is_file() or not (bundled / WEIGHTS_NAME).is_file():
            raise CheckpointError(
                f"bundled model {text!r} is missing from {bundled}: "
                f"regenerate the defaults with `python scripts/make_defaults.py`"
            )
        return bundled
    return path


def _read_config(directory: Path) -> tuple[bytes, dict]:
    """(the bytes of config.json, its checked top level)."""
    cfg_path = directory / CONFIG_NAME
    try:
        if not directory.exists():
            names = ", ".join(BUNDLED_MODELS)
            raise CheckpointError(f"no checkpoint at {directory}: the directory does not exist "
                                  f"(give a run directory or one of the bundled models: {names})")
        if not directory.is_dir():
            raise CheckpointError(f"checkpoint {directory} is not a directory")
        if not os.path.lexists(cfg_path):
            raise CheckpointError(f"checkpoint {directory} has no {CONFIG_NAME} (not a run directory, "
                                  f"or the save was interrupted)")
        raw = read_bounded(cfg_path, MAX_CONFIG_BYTES)
        config = json.loads(raw.decode("utf-8"))
    except TooLarge:
        raise CheckpointError(f"{cfg_path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: "
                              f"not a checkpoint config") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON (truncated or edited?): {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{cfg_path} is not a checkpoint config: it is nested too deeply") from None
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
    if not _is_sha(config.get("tensors_sha256")):
        raise CheckpointError(f"{cfg_path} has no valid tensors_sha256, so its weights cannot be checked: "
                              f"refusing to load it (every checkpoint records one: was config.json edited?)")
    if version >= 2:
        recorded = config.get("config_sha256")
        if not _is_sha(recorded):
            raise CheckpointError(f"{cfg_path} has no valid config_sha256, so its vocabulary and settings "
                                  f"cannot be checked: refusing to load it (was config.json edited?)")
        try:
            actual = config_digest(config)
        except RecursionError:
            raise CheckpointError(f"{cfg_path} is not a checkpoint config: it is nested too deeply") from None
        if actual != recorded:
            raise CheckpointError(f"{cfg_path} was edited after saving: its model, vocab, train or resume "
                                  f"section (or tensors_sha256) no longer matches its config_sha256: settings are not edited "
                                  f"in place; put the saved file back, or train anew with --config RUN/train.toml")
    return raw, config


class _Mismatch(CheckpointError):
    """A file does not match config.json: a real problem, or a save replacing files as we read."""


def _config_bytes(directory: Path) -> bytes | None:
    try:
        return read_bounded(directory / CONFIG_NAME, MAX_CONFIG_BYTES)
    except (OSError, ValueError):
        return None


def _read_tensors(directory: Path, expected: str, final: str, next_name: str, what: str, version: int,
                  shapes: dict[str, tuple[int, ...]] | None = None,
                  max_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """The tensors of `final` (or `next_name`) whose sha256 is `expected`, read safely.

    The header comes first (``tensorfile.read_header``): its shapes must be `shapes` (when
    given) and the file at most `max_bytes`, before the file is read whole. Raises _Mismatch
    when no candidate matches config.json (the caller decides whether it is a real problem).
    """
    w_path = directory / final
    # A save interrupted after its commit point leaves the new file under the "next" name;
    # the sha256 says which file belongs to this config. The last retry covers a save
    # finishing (renaming "next" over the usual name) while we read.
    problem, seen = None, False
    for name in (final, next_name, final):
        path = directory / name
        try:
            header = read_header(path)
            seen = True
            mismatch = shape_problem(header, shapes, FLOAT_DTYPES) if shapes is not None else None
            if mismatch is not None:
                problem = problem or f"checkpoint {directory} does not match its config: {mismatch}"
                continue
            if max_bytes is not None and header.size > max_bytes:
                problem = problem or (f"{what} file {path} is {header.size:,} bytes, more than a checkpoint "
                                      f"of this config can hold ({max_bytes:,})")
                continue
            data = read_blob(path, header)
        except FileNotFoundError:
            continue
        except TensorFileError as exc:
            seen = True
            size = _size(path)
            problem = problem or f"{what} file {path} is truncated or corrupt ({size} bytes): {exc}"
            continue
        except OSError as exc:
            seen = True
            problem = problem or f"cannot read {path}: {exc.strerror or exc}"
            continue
        if hashlib.sha256(data).hexdigest() != expected:
            problem = problem or (f"{what} file {w_path} does not match the sha256 recorded in "
                                  f"{CONFIG_NAME}: it was replaced or edited after saving")
            continue
        _check_format(directory, header, version)
        try:
            tensors = st_load(data)
        except Exception as exc:  # safetensors raises its own error type (and sometimes others)
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"{what} file {path} is truncated or corrupt "
                                  f"({len(data)} bytes): {quote(detail, 200, repr_=False)}") from None
        return tensors
    if not seen:
        raise _Mismatch(f"checkpoint {directory} has no {what} file {final}")
    raise _Mismatch(problem)


def _size(path: Path) -> int | str:
    try:
        return os.stat(path).st_size
    except OSError:
        return "?"


def _check_format(directory: Path, header: Header, version: int) -> None:
    """The weights say which format wrote them: a format-2 checkpoint passed off as format 1
    (to drop the config check) is refused."""
    written = header.metadata.get("rnn_tui_format", "")
    if written.isdigit() and int(written) > version:
        raise CheckpointError(f"{directory / CONFIG_NAME} says format_version {version}, but its weights "
                              f"were written by format {int(written)}: config.json was edited after saving")


def _skeleton(cfg: ModelConfig) -> RNNLM:
    """The model's modules on the meta device: its shapes, without memory or initialisation
    (the loaded tensors are then assigned to it)."""
    with torch.device("meta"):
        model = RNNLM(dataclasses.replace(cfg, init="default"), initialise=False)
    model.config = cfg
    if cfg.init == "echo":
        freeze_reservoir(model)
    return model


def _model_and_vocab(directory: Path, config: dict):
    """(ModelConfig, Vocab) of a checked config, cheapest checks first."""
    from .corpus import Vocab  # imported here so this module loads without the corpus code

    cfg_path = directory / CONFIG_NAME
    try:
        model_cfg = ModelConfig.from_dict(config["model"])
    except (RnnTuiError, TypeError) as exc:
        raise CheckpointError(f"{cfg_path} has a bad model config: {exc}") from None
    tokens = config["vocab"].get("tokens")
    if isinstance(tokens, list) and len(tokens) != model_cfg.vocab_size:  # before building a huge Vocab
        raise CheckpointError(f"checkpoint {directory} does not match its config: the vocab has "
                              f"{len(tokens)} tokens, the model expects {model_cfg.vocab_size}")
    try:
        vocab = Vocab.from_dict(config["vocab"])
    except Exception as exc:  # any shape of bad vocab dict is the checkpoint's fault
        raise CheckpointError(f"{cfg_path} has a bad vocab: {exc}") from None
    return model_cfg, vocab


def _state_bound(model_cfg: ModelConfig, train: dict | None) -> int:
    """The most bytes a training state of this model can take: optimizer moments (two per
    parameter, in float64 at most), step counters, the carried state, the header."""
    params = model_cfg.parameter_count()
    batch = train.get("batch") if isinstance(train, dict) else None
    batch = batch if isinstance(batch, int) and not isinstance(batch, bool) and 0 < batch <= 1 << 20 else 1 << 10
    carry = 2 * model_cfg.layers * batch * model_cfg.hidden
    return 8 * (2 * params + carry) + 8 * 1024 + (4 << 20)


def _load_once(directory: Path, want_state: bool):
    raw, config = _read_config(directory)
    version = config["format_version"]
    try:
        model_cfg, vocab = _model_and_vocab(directory, config)
        skeleton = _skeleton(model_cfg)
        shapes = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        tensors = _read_tensors(directory, config["tensors_sha256"], WEIGHTS_NAME, NEXT_WEIGHTS_NAME,
                                "weights", version, shapes=shapes)
        state = info = None
        if want_state:
            info = config.get("resume")
            if not isinstance(info, dict) or not _is_sha(info.get("sha256")):
                raise CheckpointError(f"checkpoint {directory} has no training state to resume from (only "
                                      f"the latest checkpoint of a run directory has one; best/ does not)")
            state = _read_tensors(directory, info["sha256"], STATE_NAME, NEXT_STATE_NAME, "training state",
                                  version, max_bytes=_state_bound(model_cfg, config.get("train")))
    except CheckpointError as exc:
        return raw, exc
    return raw, (config, model_cfg, vocab, skeleton, tensors, state, info)


def _load(directory: Path, want_state: bool = False):
    """(config, ModelConfig, Vocab, skeleton, weights, state, resume info), read consistently.

    A save that commits while we read makes the files we read belong to two checkpoints; the
    problem then goes away when config.json is read again. Only one that persists while
    config.json stays the same is raised."""
    remove_dead_temps(directory)  # best effort: a read-only directory keeps them
    for attempt in range(LOAD_ATTEMPTS):
        raw, result = _load_once(directory, want_state)
        if not isinstance(result, CheckpointError):
            return result
        if not isinstance(result, _Mismatch) or _config_bytes(directory) == raw or attempt == LOAD_ATTEMPTS - 1:
            raise CheckpointError(str(result)) from None
        time.sleep(0.005 * attempt)  # config.json changed: a save committed meanwhile; read it again
    raise AssertionError("unreachable")


def _to_model(directory: Path, model_cfg: ModelConfig, skeleton: RNNLM, tensors: dict) -> RNNLM:
    # float32 parameters, whatever the file holds (a half-precision file is widened).
    tensors = {k: v.float() if v.dtype != torch.float32 else v for k, v in tensors.items()}
    try:
        skeleton.load_state_dict(tensors, assign=True)
    except RuntimeError as exc:  # shapes were checked against the header: this is a stranger file
        raise CheckpointError(f"checkpoint {directory} does not match its config: "
                              f"{quote(str(exc).splitlines()[0], 200, repr_=False)}") from None
    skeleton.eval()
    return skeleton


def load_resume_state(spec) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config.json, training-state tensors, config["resume"]) of a run directory's latest checkpoint.

    Raises CheckpointError when the directory has no training state (a best/ checkpoint, a
    model saved by hand, or a run from before resumable checkpoints).
    """
    config, _, _, _, _, state, info = _load(_resolve(spec), want_state=True)
    return config, state, info


def load_run(spec, device: str | torch.device | None = "cpu") -> tuple[LoadedModel, dict[str, torch.Tensor], dict]:
    """(the model, its training-state tensors, config["resume"]) of a run's latest checkpoint,
    all from the same save (what ``Trainer.from_run`` continues)."""
    directory = _resolve(spec)
    config, model_cfg, vocab, skeleton, tensors, state, info = _load(directory, want_state=True)
    return _loaded(directory, config, model_cfg, vocab, skeleton, tensors, device), state, info


def _loaded(directory, config, model_cfg, vocab, skeleton, tensors, device) -> LoadedModel:
    model = _to_model(directory, model_cfg, skeleton, tensors)
    dev = pick_device(device if not isinstance(device, torch.device) else str(device))
    model.to(dev)
    meta = dict(config)
    meta["source"] = str(directory)
    return LoadedModel(model=model, vocab=vocab, meta=meta)


def load_model(spec, device: str | torch.device | None = "auto") -> LoadedModel:
    """Load a checkpoint: a run directory, its config.json, or a bundled name (rnn, lstm, gru).

    Raises CheckpointError (one line naming the path) for anything missing or inconsistent.
    """
    directory = _resolve(spec)
    config, model_cfg, vocab, skeleton, tensors, _, _ = _load(directory)
    return _loaded(directory, config, model_cfg, vocab, skeleton, tensors, device)
