"""load_corpus: the one way in, a bundled corpus by name or a text file by path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, CorpusError
from .base import Corpus
from .bundled import BUNDLED_CORPORA, bundled_corpus
from .files import bpe_file_corpus, cached_file_corpus, file_corpus
from .vocab import Vocab, _check_level

def load_corpus(
    spec: str,
    level: str = "char",
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    bpe_vocab: int | None = None,
    vocab: Vocab | None = None,
) -> Corpus:
    """A bundled corpus by name, or a UTF-8 text file by path.

    ``size`` is the number of sentences (sequences for parity) of a bundled corpus, or a cap on
    the number of tokens kept from a file. A bundled name wins over a file of the same name
    in the working directory; write ``./grammar`` for the file. With ``cache_dir`` a text
    file's encoding is cached there and memory-mapped on later loads (see `files`); bundled
    corpora are generated in code and never cached.

    Level "bpe" trains a BPE tokenizer on the text (at most ``bpe_vocab`` pieces) unless
    ``vocab`` (a bpe Vocab: the user's tokenizer, or a model's) is given to encode with; the
    cache keys its encoding by that tokenizer (or by ``bpe_vocab`` and the tokenizers release).
    """
    _check_level(level)
    if vocab is not None and (level != "bpe" or vocab.level != "bpe"):
        raise ConfigError("a given vocabulary is a subword tokenizer's, for level 'bpe'")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise ConfigError(f"size must be a positive whole number, got {size!r}")
    spec = os.fspath(spec)
    name = spec.strip().lower()
    if not name:
        raise CorpusError(f"no corpus given: name one of {', '.join(BUNDLED_CORPORA)} or a text file")
    if name in BUNDLED_CORPORA:
        return bundled_corpus(name, level, seed, val_fraction, size, vocab=vocab, bpe_vocab=bpe_vocab)
    if cache_dir is not None:
        return cached_file_corpus(spec, level, val_fraction, size, Path(cache_dir).expanduser(),
                                  bpe_vocab=bpe_vocab, given=vocab)
    if level == "bpe":
        return bpe_file_corpus(spec, val_fraction, size, bpe_vocab, vocab)
    return file_corpus(spec, level, val_fraction, size)
