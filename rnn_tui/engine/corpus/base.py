"""The Corpus record every loader returns: a vocabulary and the training and validation id
streams (with explicit targets where the label is not the next token)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CorpusError
from .vocab import Vocab

BUNDLED_CORPORA = ("grammar", "parity", "agreement")


@dataclass(frozen=True, eq=False)
class Corpus:
    name: str
    vocab: Vocab
    train: np.ndarray
    val: np.ndarray
    train_targets: np.ndarray | None = None
    val_targets: np.ndarray | None = None
    categories: dict[str, str] | None = None
    description: str = ""
    examples: tuple[str, ...] = field(default_factory=tuple)
    # A text file's identity: {"path": absolute, "bytes": size, "head_tail_sha256": ...}, kept in
    # a run's config.json so the same text is found again (or known to be gone). None: bundled.
    source: dict | None = None

    @property
    def level(self) -> str:
        return self.vocab.level


def train_val_split(name: str, ids: np.ndarray, val_fraction: float, targets: np.ndarray | None = None):
    n = len(ids)
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise CorpusError(
            f"{name} is too short: {n} token{'s' if n != 1 else ''} cannot be split into "
            "training and validation text (need at least 2)"
        )
    cut = n - n_val
    if targets is None:
        return ids[:cut], ids[cut:], None, None
    return ids[:cut], ids[cut:], targets[:cut], targets[cut:]
