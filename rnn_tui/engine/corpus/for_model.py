"""The corpus a model was trained on, found again for the probes that read it (the inspector).

Never a silent stand-in: a bundled corpus by its name; a text file by the path its run kept
(with its size and the sha256 of its head and tail, so the same text moved elsewhere is
recognised when it is given again); the app's ``--corpus`` when it is that text. When the file
is gone the error says where it was and how to point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CorpusError
from .base import BUNDLED_CORPORA, Corpus
from .files import _fingerprint
from .load import load_corpus


@dataclass(frozen=True)
class ModelCorpus:
    corpus: Corpus
    note: str  # which text this is, in words ("grammar (bundled)", "/data/x.txt", "… changed since")


def _same_text(path: Path, source: dict) -> bool:
    try:
        fp = _fingerprint(path)
    except OSError:
        return False
    return fp["bytes"] == source.get("bytes") and fp["head_tail_sha256"] == source.get("head_tail_sha256")


def corpus_for_model(lm, given: Corpus | None = None) -> ModelCorpus:
    """The corpus ``lm`` was trained on (see the module docstring); ``given``: the app's --corpus.

    Raises CorpusError, saying what is missing and how to point at it, when it cannot be found."""
    level = lm.vocab.level
    # A subword model reads a text with its own tokenizer (another BPE training would differ).
    own = {"vocab": lm.vocab} if level == "bpe" else {}
    name = str(lm.meta.get("corpus") or "").strip()
    source = lm.meta.get("corpus_source") if isinstance(lm.meta.get("corpus_source"), dict) else None
    if name.lower() in BUNDLED_CORPORA:
        return ModelCorpus(load_corpus(name.lower(), level=level, **own), name.lower())
    if given is not None and level == "bpe" and given.vocab.level != level and (given.source or {}).get("path"):
        given = load_corpus(given.source["path"], level=level, **own)  # --corpus in the model's own pieces
    if given is not None and given.vocab.level == level:
        if source and given.source and given.source.get("head_tail_sha256") == source.get("head_tail_sha256"):
            return ModelCorpus(given, f"{given.source['path']} (the text it was trained on)")
        if not source:  # nothing to check it against: the text the user points at
            return ModelCorpus(given, f"{given.name} (--corpus)")
    if not name and not source:
        raise CorpusError("this model does not say what it was trained on: open it with --corpus FILE "
                          "to search a text")
    where = source.get("path") if source else name
    candidates = [Path(where)] if where else []
    run = lm.meta.get("source")
    if name and run:  # an older run kept only the bare name: next to its run directory
        candidates.append(Path(run).parent / name)
    for path in candidates:
        if path.is_file():
            corpus = load_corpus(str(path), level=level, **own)
            if source and not _same_text(path, source):
                return ModelCorpus(corpus, f"{path} (changed since the model was trained on it)")
            return ModelCorpus(corpus, str(path))
    if given is not None:
        raise CorpusError(f"this model was trained on {where}, and --corpus {given.name} is another text "
                          f"(its size or content differ)")
    raise CorpusError(f"this model was trained on {where}, which is not there any more: "
                      f"start rnn-tui with --corpus FILE to point at the same text")
