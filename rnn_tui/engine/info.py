"""What ``rnn-tui info`` says about a loaded model: its config, parameter counts by part, and
the metrics summary its checkpoint carries, as plain JSON-able values."""

from __future__ import annotations

from ..runs.metrics import SUMMARY_KEYS
from .model import LoadedModel


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
        "format_version": meta.get("format_version"),
        "source": meta.get("source"),
        "device": str(lm.device),
    }
