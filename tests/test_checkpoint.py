"""Checkpoints: bit-exact round trips, atomic saves, and one clear error per kind of damage."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import rnn_tui
from rnn_tui.engine import checkpoint
from rnn_tui.engine.checkpoint import BUNDLED_MODELS, CONFIG_NAME, WEIGHTS_NAME, load_model, save_checkpoint
from rnn_tui.engine.info import describe
from rnn_tui.engine.corpus import Vocab
from rnn_tui.engine.errors import CheckpointError
from rnn_tui.engine.model import ModelConfig, build_model

TEXT = "the cat sat on the mat. a dog ran."


def _vocab(text: str = TEXT) -> Vocab:
    return Vocab.build(text, "char")


def _model(vocab: Vocab, cell: str = "lstm", seed: int = 0, init: str = "default"):
    cfg = ModelConfig(vocab_size=len(vocab), cell=cell, embed=6, hidden=10, layers=2, init=init)
    return build_model(cfg, seed=seed)


META = {
    "corpus": "tiny",
    "level": "char",
    "categories": {"cat": "NOUN", "sat": None},
    "train": {"lr": 0.003, "steps": 10},
    "metrics": {"step": 10, "train_loss": 1.5, "val_loss": float("nan"), "best_val_loss": 1.4,
                "bits_per_token": 1.5 / math.log(2), "tokens_per_s": 1000.0, "wall_time_s": 0.5},
}


@pytest.fixture
def saved(tmp_path):
    vocab = _vocab()
    model = _model(vocab)
    run = save_checkpoint(tmp_path / "run", model, vocab, META)
    return run, model, vocab


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("cell,init", [("rnn", "identity"), ("lstm", "default"), ("gru", "echo")])
def test_round_trip_is_bit_exact(tmp_path, cell, init):
    vocab = _vocab()
    model = _model(vocab, cell, seed=3, init=init)
    run = save_checkpoint(tmp_path / "run", model, vocab, META)
    lm = load_model(run, device="cpu")
    saved_state, loaded_state = model.state_dict(), lm.model.state_dict()
    assert saved_state.keys() == loaded_state.keys()
    for key, value in saved_state.items():
        assert torch.equal(value, loaded_state[key]), key
    assert lm.config == model.config  # nonlinearity, init etc. survive the JSON trip
    assert lm.vocab == vocab
    assert not lm.model.training
    # echo-state keeps its recurrent matrix frozen after loading too
    frozen = [n for n, p in lm.model.named_parameters() if not p.requires_grad]
    assert bool(frozen) == (init == "echo")


def test_config_json_contents(saved):
    run, model, vocab = saved
    config = json.loads((run / CONFIG_NAME).read_text())
    assert config["format_version"] == checkpoint.FORMAT_VERSION == 2
    assert config["config_sha256"] == checkpoint.config_digest(config)
    assert config["model"] == model.config.to_dict()
    assert config["vocab"] == vocab.to_dict()
    assert config["corpus"] == "tiny" and config["level"] == "char"
    assert config["categories"] == {"cat": "NOUN", "sat": None}
    assert config["train"] == {"lr": 0.003, "steps": 10}
    assert config["metrics"]["val_loss"] is None  # NaN is not JSON: written as null
    assert config["metrics"]["best_val_loss"] == 1.4
    assert "T" in config["created"]
    assert config["tensors_sha256"] == hashlib.sha256((run / WEIGHTS_NAME).read_bytes()).hexdigest()
    lm = load_model(run / CONFIG_NAME, device="cpu")  # the config.json path works as a spec
    assert lm.meta["source"] == str(run)
    assert lm.meta["corpus"] == "tiny" and lm.categories == {"cat": "NOUN", "sat": None}


def test_no_temp_files_and_best_subdirectory(saved):
    run, model, vocab = saved
    save_checkpoint(run, model, vocab, META)  # overwrite
    best = save_checkpoint(run, model, vocab, META, name="best")
    assert best == run / "best"
    assert sorted(p.name for p in run.iterdir()) == ["best", CONFIG_NAME, WEIGHTS_NAME]
    assert sorted(p.name for p in best.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert torch.equal(load_model(best, "cpu").model.head.weight, model.head.weight)


def test_tensors_are_saved_from_non_contiguous_memory(tmp_path):
    vocab = _vocab()
    model = _model(vocab)
    with torch.no_grad():  # a transposed view is not contiguous; safetensors alone would refuse it
        model.head.weight = torch.nn.Parameter(model.head.weight.detach().t().contiguous().t())
    assert not model.head.weight.is_contiguous()
    run = save_checkpoint(tmp_path / "r", model, vocab, META)
    assert torch.equal(load_model(run, "cpu").model.head.weight, model.head.weight)


def test_interrupted_save_leaves_the_previous_checkpoint(saved, monkeypatch):
    run, old_model, vocab = saved
    new_model = _model(vocab, seed=99)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).name == CONFIG_NAME:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", failing_replace)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        save_checkpoint(run, new_model, vocab, META)
    monkeypatch.undo()
    lm = load_model(run, "cpu")
    for key, value in old_model.state_dict().items():
        assert torch.equal(lm.model.state_dict()[key], value), key
    assert sorted(p.name for p in run.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no leftovers


def test_crash_after_the_commit_point_loads_the_new_checkpoint(saved, monkeypatch):
    run, _, vocab = saved
    new_model = _model(vocab, seed=99)
    real_replace = os.replace

    def crash_on_final_rename(src, dst):
        if Path(src).name == checkpoint.NEXT_WEIGHTS_NAME and Path(dst).name == WEIGHTS_NAME:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_final_rename)
    with pytest.raises(CheckpointError):
        save_checkpoint(run, new_model, vocab, META)
    monkeypatch.undo()
    # config.json was committed, so the new weights (still under the "next" name) are loaded.
    lm = load_model(run, "cpu")
    assert torch.equal(lm.model.embed.weight, new_model.embed.weight)


# ------------------------------------------------------------------ bundled defaults
def test_bundled_names_resolve(tmp_path, monkeypatch):
    assert checkpoint.DEFAULTS_DIR == Path(rnn_tui.__file__).resolve().parent / "defaults"
    assert BUNDLED_MODELS == ("rnn", "lstm", "gru")
    vocab = _vocab()
    model = _model(vocab, "gru")
    save_checkpoint(tmp_path / "gru", model, vocab, META)
    monkeypatch.setattr(checkpoint, "DEFAULTS_DIR", tmp_path)
    lm = load_model("gru", "cpu")
    assert lm.config.cell == "gru" and lm.meta["source"] == str(tmp_path / "gru")
    with pytest.raises(CheckpointError, match=r"bundled model 'lstm' is missing.*make_defaults\.py"):
        load_model("lstm", "cpu")


# ------------------------------------------------------------------ damage, one message each
def _truncate(run):
    w = run / WEIGHTS_NAME
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def _garbage_header(run):
    w = run / WEIGHTS_NAME
    data = bytearray(w.read_bytes())
    data[8:40] = b"#" * 32  # the JSON header of the safetensors file
    w.write_bytes(bytes(data))


def _other_weights(run):
    # Same shapes, other values: only the checksum can tell.
    vocab = _vocab()
    save_file(_model(vocab, seed=5).state_dict(), str(run / WEIGHTS_NAME))


def _other_vocab_weights(run, keep_checksum_valid=True):
    # Weights of a model trained on a bigger vocabulary, checksum updated as if by hand.
    vocab = _vocab(TEXT + "XYZ")
    save_file(_model(vocab).state_dict(), str(run / WEIGHTS_NAME))
    cfg_path = run / CONFIG_NAME
    config = json.loads(cfg_path.read_text())
    config["tensors_sha256"] = hashlib.sha256((run / WEIGHTS_NAME).read_bytes()).hexdigest()
    config["config_sha256"] = checkpoint.config_digest(config)
    cfg_path.write_text(json.dumps(config))


def _edit_config(rehash=True, **changes):
    """Edit config.json; `rehash`: recompute its config_sha256 too, as a tool that knows the format
    would (the checks behind the hash are then what refuses it)."""
    def edit(run):
        cfg_path = run / CONFIG_NAME
        config = json.loads(cfg_path.read_text())
        for key, value in changes.items():
            section, _, sub = key.partition("__")
            if sub:
                config[section][sub] = value(config[section][sub]) if callable(value) else value
            elif value is None:
                del config[section]
            else:
                config[section] = value
        if rehash and "config_sha256" in config:
            config["config_sha256"] = checkpoint.config_digest(config)
        cfg_path.write_text(json.dumps(config))
    return edit


N_VOCAB = len(_vocab())

DAMAGE = [
    ("directory missing", lambda run: None, "nowhere", r"does not exist"),
    ("config missing", lambda run: (run / CONFIG_NAME).unlink(), None, r"has no config\.json"),
    ("config truncated", lambda run: (run / CONFIG_NAME).write_text((run / CONFIG_NAME).read_text()[:40]),
     None, r"is not valid JSON"),
    ("newer format", _edit_config(format_version=7), None, r"format_version 7, newer"),
    ("no format", _edit_config(format_version=None), None, r"no valid format_version"),
    ("weights missing", lambda run: (run / WEIGHTS_NAME).unlink(), None, r"has no weights file"),
    ("weights truncated", _truncate, None, r"truncated or corrupt"),
    ("weights header garbage", _garbage_header, None, r"truncated or corrupt"),
    ("weights swapped", _other_weights, None, r"does not match the sha256"),
    ("other vocabulary", _other_vocab_weights, None,
     rf"does not match its config: embed\.weight has shape \[{N_VOCAB + 3}, 6\], "
     rf"the config expects \[{N_VOCAB}, 6\]"),
    ("vocab size differs", _edit_config(vocab__tokens=lambda t: t[:-1]), None,
     rf"the vocab has {N_VOCAB - 1} tokens, the model expects {N_VOCAB}"),
    ("bad model config", _edit_config(model__cell="transformer"), None, r"bad model config: unknown cell"),
    ("vocab edited", _edit_config(rehash=False, vocab__tokens=lambda t: [t[1], t[0], *t[2:]]), None,
     r"was edited after saving: its model, vocab"),
    ("model edited", _edit_config(rehash=False, model__nonlinearity="relu"), None, r"was edited after saving"),
    ("no weights hash", _edit_config(tensors_sha256=None), None, r"has no valid tensors_sha256"),
    ("no config hash", _edit_config(config_sha256=None), None, r"has no valid config_sha256"),
    ("passed off as format 1", _edit_config(format_version=1, config_sha256=None), None,
     r"says format_version 1, but its weights were written by format 2"),
]


@pytest.mark.parametrize("what,damage,spec,pattern", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_checkpoint_gives_one_clear_line(saved, what, damage, spec, pattern):
    run = saved[0]
    damage(run)
    target = run.parent / spec if spec else run
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_model(target, "cpu")
    message = str(info.value)
    assert "\n" not in message
    assert str(target) in message


def test_describe_counts_parameters(tmp_path):
    vocab = _vocab()
    model = _model(vocab, "gru", init="echo")
    run = save_checkpoint(tmp_path / "r", model, vocab, META)
    info = describe(load_model(run, "cpu"))
    total = sum(p.numel() for p in model.parameters())
    params = info["parameters"]
    assert params["total"] == total == model.config.parameter_count()
    assert params["embedding"] + params["recurrent"] + params["head"] == total
    # echo-state freezes W_hh and b_hh of both layers: 2 x (3H x H + 3H)
    assert params["frozen"] == 2 * (30 * 10 + 30)
    assert params["trainable"] == total - params["frozen"]
    assert info["trainable_by_part"]["recurrent"] == params["recurrent"] - params["frozen"]
    assert info["cell"] == "gru" and info["vocab_size"] == len(vocab) and info["level"] == "char"
    assert info["corpus"] == "tiny" and info["init"] == "echo"
    assert info["metrics"]["step"] == 10 and info["source"] == str(run)
    json.dumps(info)  # plain values only


def test_resaving_a_loaded_model_describes_the_new_weights(saved, tmp_path):
    run, _, vocab = saved
    lm = load_model(run, "cpu")
    with torch.no_grad():
        lm.model.head.bias.add_(1.0)
    again = save_checkpoint(tmp_path / "again", lm.model, lm.vocab, lm.meta)
    reloaded = load_model(again, "cpu")  # a stale sha256 or source would break this
    assert torch.equal(reloaded.model.head.bias, lm.model.head.bias)
    assert reloaded.meta["source"] == str(again) and reloaded.meta["corpus"] == "tiny"


def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        vocab = _vocab()
        run = save_checkpoint(tmp_path / "r", _model(vocab), vocab, META)
    finally:
        os.umask(old)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name  # not a temp file's 0600


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_bundled_defaults_load_when_present(name):
    if not (checkpoint.DEFAULTS_DIR / name / CONFIG_NAME).exists():
        pytest.skip("bundled defaults not generated (python scripts/make_defaults.py)")
    lm = load_model(name, "cpu")
    assert lm.config.cell == name and lm.meta["corpus"] == "grammar"


def test_loading_a_model_does_not_import_torch_dynamo():
    """Building the skeleton on the meta device once pulled in torch._dynamo (a second of the
    app's start-up, through the embedding's init on meta)."""
    import subprocess
    import sys

    code = ("import sys, torch; from rnn_tui.engine.checkpoint import load_model; load_model('lstm', 'cpu'); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
