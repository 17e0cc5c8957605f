"""Shared fixtures: tiny seeded models built in-process, and the bundled default when present.

The TUI tests use the real engine on these models (no mocks): a 1-layer H=24 model over the
28-character toy alphabet traces, samples and takes Jacobians in milliseconds.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

# The CLI caches encoded corpora in ~/.cache by default; tests keep theirs out of the home dir.
os.environ.setdefault("RNN_TUI_CACHE_DIR", tempfile.mkdtemp(prefix="rnn-tui-test-cache-"))

# Tiny models on a 2-core CI machine: a second intra-op thread only adds contention.
torch.set_num_threads(1)

TINY_HIDDEN = 24
TINY_EMBED = 8


def make_tiny_lm(cell: str = "lstm", hidden: int = TINY_HIDDEN, layers: int = 1, level: str = "char",
                 seed: int = 0, categories: bool = True):
    """A seeded, untrained LoadedModel over the grammar corpus's alphabet (or its words)."""
    from rnn_tui.engine.corpus import TOY_ALPHABET, Vocab, grammar_categories
    from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model

    cats = grammar_categories()
    if level == "char":
        vocab = Vocab(tokens=tuple(TOY_ALPHABET), level="char")
    else:
        vocab = Vocab(tokens=("<unk>", ".", *sorted(cats)), level="word", unk="<unk>")
    config = ModelConfig(vocab_size=len(vocab), cell=cell, embed=TINY_EMBED, hidden=hidden, layers=layers)
    model = build_model(config, seed=seed, device="cpu")
    model.eval()
    meta = {"corpus": "grammar", "level": level}
    if categories:
        meta["categories"] = cats
    return LoadedModel(model=model, vocab=vocab, meta=meta)


@pytest.fixture
def tiny_lm():
    """A tiny seeded LSTM (char level, grammar categories)."""
    return make_tiny_lm("lstm")


@pytest.fixture
def tiny_factory():
    """make_tiny_lm, for tests that want another cell, size, depth or level."""
    return make_tiny_lm


@pytest.fixture
def bundled_lm():
    """The bundled trained LSTM; skips when the defaults have not been generated yet."""
    from rnn_tui.engine.checkpoint import BUNDLED_MODELS, DEFAULTS_DIR, load_model

    if "lstm" not in BUNDLED_MODELS or not (DEFAULTS_DIR / "lstm" / "config.json").is_file():
        pytest.skip("bundled defaults missing: run scripts/make_defaults.py")
    return load_model("lstm", "cpu")


@pytest.fixture
def tiny_bundled(monkeypatch):
    """Tiny seeded stand-ins for the bundled rnn/lstm/gru (the stepper's agreement line, the
    gradients' overlays read them): nothing then depends on the shipped defaults."""
    import rnn_tui.session as session

    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = make_tiny_lm(name, seed=1)
        return cache[name]

    monkeypatch.setattr(session, "load_bundled", load)
