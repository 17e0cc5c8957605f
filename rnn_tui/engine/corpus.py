"""Corpora and vocabularies: text files and three bundled toy tasks, tokenised to id streams.

The bundled corpora are generated in code from a seed, so a run can be repeated exactly and
no data files have to ship with the package:

- ``grammar``: an Elman (1990)-style toy language of a few dozen words in categories, so the
  hidden states can be seen to cluster by category.
- ``parity``: Elman's temporal XOR, a task whose label is not the next token.
- ``agreement``: subject-verb agreement across a distractor clause of controllable length.

A text file can be encoded once and cached (``load_corpus(path, cache_dir=...)``): the ids go
to ``<cache_dir>/<key>-<fingerprint>.npy`` in the smallest integer type that holds the
vocabulary (uint8 for most character vocabularies), and a JSON sidecar ``<key>.json`` records
the vocabulary, the level, the size cap and the source file's size, mtime and the sha256 of
its first and last MiB. A later load with an unchanged file memory-maps the array
(``np.load(mmap_mode="r")``) instead of reading and tokenising the text again; a changed file
(size, mtime or content fingerprint) is encoded afresh and replaces the entry. The sidecar is
written last and atomically, so a half-written cache is never read. ``default_cache_dir()``
is ``$RNN_TUI_CACHE_DIR``, else ``$XDG_CACHE_HOME/rnn-tui/corpus``, else
``~/.cache/rnn-tui/corpus``. A cached corpus's ``train``/``val`` arrays are read-only memory
maps of that small integer type (BatchStream widens each window as it goes).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from .errors import ConfigError, CorpusError, VocabError

LEVELS = ("char", "word")
ON_UNKNOWN = ("error", "skip", "unk")
BUNDLED_CORPORA = ("grammar", "parity", "agreement")
UNK = "<unk>"

# Word level keeps punctuation as tokens of its own so "dog." and "dog" share an id.
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_WORD_SPAN_RE = re.compile(r"\w+")
# How many unknown tokens a message names before it only counts the rest.
_SHOW_UNKNOWN = 8
# Beyond this a file would take several GB as int64 ids; no CPU training run needs that much.
MAX_FILE_BYTES = 256 * 1024 * 1024
# A CUDA BatchStream keeps its data on the GPU up to this size, else in pinned host memory.
_ON_DEVICE_BYTES = 1 << 30


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"unknown tokenisation level {level!r}: choose 'char' or 'word'")
    return level


def _noun(level: str, count: int) -> str:
    word = "character" if level == "char" else "word"
    return word if count == 1 else word + "s"


def _unknown_phrase(level: str, unknown: Sequence[str]) -> str:
    """'2 characters not in the model's vocabulary ('Q', '!')', naming at most a few."""
    shown = ", ".join(repr(t) for t in unknown[:_SHOW_UNKNOWN])
    if len(unknown) > _SHOW_UNKNOWN:
        shown += f", ... and {len(unknown) - _SHOW_UNKNOWN} more"
    return f"{len(unknown)} {_noun(level, len(unknown))} not in the model's vocabulary ({shown})"


# --------------------------------------------------------------------------------------------
# Vocabulary and encoding


@dataclass(frozen=True, eq=False)
class Encoded:
    """The result of encoding a text: ids plus what happened to tokens the vocab lacks.

    ``tokens[i]`` is always the vocabulary token of ``ids[i]`` (so an unknown mapped to
    ``<unk>`` shows as ``<unk>``); ``unknown`` lists the distinct unknown tokens in order of
    first appearance.
    """

    ids: np.ndarray
    tokens: tuple[str, ...]
    unknown: tuple[str, ...]
    handling: str  # "none", "skipped" or "mapped to <unk>"
    level: str = "char"

    def message(self) -> str | None:
        if not self.unknown:
            return None
        verb = "was" if len(self.unknown) == 1 else "were"
        return f"{_unknown_phrase(self.level, self.unknown)} {verb} {self.handling}"


@dataclass(frozen=True)
class Vocab:
    tokens: tuple[str, ...]
    level: str
    unk: str | None = None

    def __post_init__(self) -> None:
        # Accept a list (e.g. straight from JSON) but store a tuple so the vocab stays hashable.
        object.__setattr__(self, "tokens", tuple(self.tokens))
        _check_level(self.level)
        if not self.tokens:
            raise VocabError("a vocabulary needs at least one token")
        if not all(isinstance(t, str) and t for t in self.tokens):
            raise VocabError("vocabulary tokens must be non-empty strings")
        if len(set(self.tokens)) != len(self.tokens):
            dupes = [t for t, c in Counter(self.tokens).items() if c > 1]
            raise VocabError(f"vocabulary has duplicate tokens: {', '.join(map(repr, dupes[:8]))}")
        if self.unk is not None and self.unk not in self.tokens:
            raise VocabError(f"the unknown token {self.unk!r} is not in the vocabulary")
        if self.level == "char":
            bad = [t for t in self.tokens if len(t) != 1 and t != self.unk]
            if bad:
                raise VocabError(f"a character vocabulary has multi-character tokens: {bad[:8]!r}")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    @cached_property
    def reads_lowercase_only(self) -> bool:
        """A character vocabulary with no capital letter: 'Hello' is best read as 'hello'
        (rather than 'ello'). The one rule the screens and the corpus encoder share."""
        return self.level == "char" and not any(t != t.lower() for t in self.tokens)

    @cached_property
    def stoi(self) -> dict[str, int]:
        """token -> id."""
        return {t: i for i, t in enumerate(self.tokens)}

    @cached_property
    def _token_array(self) -> np.ndarray:
        # An object array lets decode and Encoded.tokens index many ids at C speed.
        arr = np.empty(len(self.tokens), dtype=object)
        arr[:] = self.tokens
        return arr

    @cached_property
    def _char_table(self) -> tuple[np.ndarray, np.ndarray]:
        # Sorted code points and their ids: searchsorted then maps a whole text at once.
        pairs = sorted((ord(t), i) for i, t in enumerate(self.tokens) if len(t) == 1)
        codes = np.array([c for c, _ in pairs], dtype=np.uint32)
        ids = np.array([i for _, i in pairs], dtype=np.int64)
        return codes, ids

    def split(self, text: str) -> list[str]:
        return list(text) if self.level == "char" else _WORD_RE.findall(text)

    def _lookup(self, text: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """ids with -1 where unknown, and the distinct unknown tokens in order of appearance."""
        if self.level == "char":
            codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            table, table_ids = self._char_table
            if len(codes) == 0 or len(table) == 0:
                return np.full(len(codes), -1, dtype=np.int64), tuple(dict.fromkeys(text))
            pos = np.searchsorted(table, codes)
            np.minimum(pos, len(table) - 1, out=pos)
            found = table[pos] == codes
            ids = table_ids[pos]
            if found.all():
                return ids, ()
            ids[~found] = -1
            bad = codes[~found]
            uniq, first = np.unique(bad, return_index=True)
            return ids, tuple(chr(int(c)) for c in uniq[np.argsort(first)])
        toks = self.split(text)
        stoi = self.stoi
        ids = np.fromiter((stoi.get(t, -1) for t in toks), dtype=np.int64, count=len(toks))
        unknown = tuple(dict.fromkeys(t for t in toks if t not in stoi))
        return ids, unknown

    def _ids(self, text: str, on_unknown: str) -> tuple[np.ndarray, tuple[str, ...], str]:
        if on_unknown not in ON_UNKNOWN:
            raise ConfigError(f"unknown on_unknown policy {on_unknown!r}: choose error, skip or unk")
        ids, unknown = self._lookup(text)
        if not unknown:
            return ids, (), "none"
        if on_unknown == "error":
            raise VocabError(f"the text has {_unknown_phrase(self.level, unknown)}")
        bad = ids < 0
        # unknown names each token once; "QQ the" skips two characters, and says so
        n = int(bad.sum())
        times = f" ({n} in all)" if n > len(unknown) else ""
        if on_unknown == "unk" and self.unk is not None:
            ids[bad] = self.stoi[self.unk]
            return ids, unknown, f"mapped to {self.unk}{times}"
        # "unk" without an unk token falls back to skipping: there is nothing to map to.
        return ids[~bad], unknown, f"skipped{times}"

    def encode(self, text: str, on_unknown: str = "error") -> Encoded:
        ids, unknown, handling = self._ids(text, on_unknown)
        tokens = tuple(self._token_array[ids]) if len(ids) else ()
        return Encoded(ids=ids, tokens=tokens, unknown=unknown, handling=handling, level=self.level)

    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        elif not isinstance(ids, (np.ndarray, list, tuple)):
            ids = list(ids)
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(arr) and (arr.min() < 0 or arr.max() >= len(self.tokens)):
            raise VocabError(f"token id out of range 0..{len(self.tokens) - 1} for this vocabulary")
        sep = "" if self.level == "char" else " "
        return sep.join(self._token_array[arr])

    def to_dict(self) -> dict:
        return {"level": self.level, "tokens": list(self.tokens), "unk": self.unk}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Vocab":
        if not isinstance(data, Mapping) or not isinstance(data.get("tokens"), (list, tuple)):
            raise VocabError("bad vocabulary data: expected a mapping with a 'tokens' list")
        return cls(tokens=tuple(data["tokens"]), level=data.get("level", "char"), unk=data.get("unk"))

    @classmethod
    def build(cls, text: str, level: str, max_words: int = 20000) -> "Vocab":
        """Char: every character of the text, sorted. Word: the most frequent words plus <unk>."""
        _check_level(level)
        if not text:
            raise CorpusError("cannot build a vocabulary from empty text")
        if level == "char":
            return cls(tokens=tuple(sorted(set(text))), level="char")
        if max_words < 1:
            raise ConfigError(f"max_words must be at least 1, got {max_words}")
        # most_common breaks ties by first appearance, so the vocab is deterministic.
        common = [w for w, _ in Counter(_WORD_RE.findall(text)).most_common(max_words)]
        # "<unk>" can never be a word token (the splitter cuts it at "<"), so it cannot clash.
        return cls(tokens=(UNK, *common), level="word", unk=UNK)


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) for every word of a text, to label char-level positions by word."""
    return [(m.start(), m.end(), m.group()) for m in _WORD_SPAN_RE.finditer(text)]


# --------------------------------------------------------------------------------------------
# Corpus


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

    @property
    def level(self) -> str:
        return self.vocab.level


def load_corpus(
    spec: str,
    level: str = "char",
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Corpus:
    """A bundled corpus by name, or a UTF-8 text file by path.

    ``size`` is the number of sentences (sequences for parity) of a bundled corpus, or a cap on
    the number of tokens kept from a file. A bundled name wins over a file of the same name
    in the working directory; write ``./grammar`` for the file. With ``cache_dir`` a text
    file's encoding is cached there and memory-mapped on later loads (see the module
    docstring); bundled corpora are generated in code and never cached.
    """
    _check_level(level)
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise ConfigError(f"size must be a positive whole number, got {size!r}")
    spec = os.fspath(spec)
    name = spec.strip().lower()
    if not name:
        raise CorpusError(f"no corpus given: name one of {', '.join(BUNDLED_CORPORA)} or a text file")
    if name == "grammar":
        return _grammar_corpus(level, seed, val_fraction, size)
    if name == "parity":
        return _parity_corpus(level, seed, val_fraction, size)
    if name == "agreement":
        return _agreement_corpus(level, seed, val_fraction, size)
    if cache_dir is not None:
        return _cached_file_corpus(spec, level, val_fraction, size, Path(cache_dir).expanduser())
    return _file_corpus(spec, level, val_fraction, size)


def _check_path(spec: str) -> Path:
    """The file a corpus spec names, or a CorpusError saying why it cannot be one."""
    path = Path(spec).expanduser()
    if not path.exists():
        looks_like_path = os.sep in spec or "/" in spec or path.suffix != ""
        if looks_like_path:
            raise CorpusError(f"no such file: {path}")
        raise CorpusError(
            f"{spec!r} is not a bundled corpus ({', '.join(BUNDLED_CORPORA)}) "
            f"and no such file exists ({path.absolute()})"
        )
    if path.is_dir():
        raise CorpusError(f"{path} is a directory, not a text file")
    if not path.is_file():
        raise CorpusError(f"{path} is not a regular file")
    return path


def _read_text(spec: str) -> tuple[Path, str]:
    path = _check_path(spec)
    try:
        nbytes = path.stat().st_size
        if nbytes > MAX_FILE_BYTES:
            raise CorpusError(
                f"{path} is {nbytes / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB: "
                "use a shorter text"
            )
        data = path.read_bytes()
    except PermissionError:
        raise CorpusError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise CorpusError(f"{path} is empty")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise CorpusError(f"{path} looks like UTF-16 text: save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise CorpusError(f"{path} looks like a binary file (NUL byte at byte offset {nul}), not UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise CorpusError(
            f"{path} is not UTF-8 text: byte 0x{bad:02x} at byte offset {exc.start} cannot be decoded"
        ) from None
    del data
    if text.startswith("\ufeff"):  # a BOM is not part of the text
        text = text[1:]
    if "\r\n" in text:  # Windows line ends would otherwise add "\r" to the vocabulary
        text = text.replace("\r\n", "\n")
    if not text or text.isspace():
        raise CorpusError(f"{path} contains only whitespace")
    return path, text


def _split(name: str, ids: np.ndarray, val_fraction: float, targets: np.ndarray | None = None):
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


def _examples_from_text(text: str, limit: int = 3, width: int = 80) -> tuple[str, ...]:
    out: list[str] = []
    # Only the head of the text: a huge file must not be split into lines just for this.
    for line in text[:20000].splitlines():
        line = line.strip()
        if line:
            out.append(line[:width])
            if len(out) == limit:
                break
    return tuple(out)


def _file_corpus(spec: str, level: str, val_fraction: float, size: int | None) -> Corpus:
    path, text = _read_text(spec)
    if size is not None and level == "char":
        text = text[:size]
    vocab = Vocab.build(text, level)
    # Built from this very text, so only words beyond max_words can be unknown.
    ids, _, _ = vocab._ids(text, "unk")
    if size is not None:
        ids = ids[:size]
    train, val, _, _ = _split(path.name, ids, val_fraction)
    unit = "characters" if level == "char" else "words"
    return Corpus(
        name=path.name,
        vocab=vocab,
        train=train,
        val=val,
        description=f"{path}: {len(ids)} {unit}, {len(vocab)} distinct tokens",
        examples=_examples_from_text(text),
    )


# --------------------------------------------------------------------------------------------
# The encoding cache for text files

CACHE_VERSION = 1
CACHE_ENV = "RNN_TUI_CACHE_DIR"
_FINGERPRINT_BYTES = 1 << 20  # the sha256 covers the first and the last MiB of the source


def default_cache_dir() -> Path:
    """$RNN_TUI_CACHE_DIR, else $XDG_CACHE_HOME/rnn-tui/corpus, else ~/.cache/rnn-tui/corpus."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnn-tui" / "corpus"


def _fingerprint(path: Path) -> dict:
    """What identifies the file's content: size, mtime, and the sha256 of its head and tail."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(_FINGERPRINT_BYTES))
        if st.st_size > 2 * _FINGERPRINT_BYTES:
            fh.seek(st.st_size - _FINGERPRINT_BYTES)
        digest.update(fh.read(_FINGERPRINT_BYTES))
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha256": digest.hexdigest()}


def _id_dtype(n_tokens: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_tokens <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _encode_file_text(text: str, level: str) -> tuple[Vocab, np.ndarray]:
    """The vocabulary and ids of a whole file, as `Vocab.build` + `encode` would give them.

    Character level takes a faster road for large texts (one bincount over the code points
    and a lookup table) with the very same result: sorted characters, ids in that order.
    """
    if level != "char":
        vocab = Vocab.build(text, level)
        ids, _, _ = vocab._ids(text, "unk")
        return vocab, ids.astype(_id_dtype(len(vocab)), copy=False)
    if not text:
        raise CorpusError("cannot build a vocabulary from empty text")
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    present = np.flatnonzero(np.bincount(codes))
    vocab = Vocab(tokens=tuple(chr(int(c)) for c in present), level="char")
    dtype = _id_dtype(len(present))
    lut = np.zeros(int(present[-1]) + 1, dtype=dtype)
    lut[present] = np.arange(len(present), dtype=dtype)
    return vocab, lut[codes]


def _write_atomic(path: Path, write) -> None:
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _cache_key(path: Path, level: str, size: int | None) -> str:
    ident = f"{path.resolve()}\0{level}\0{size}"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.name)[:40]
    return f"{stem}-{hashlib.sha256(ident.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def _read_cache(cache_dir: Path, key: str, path: Path, level: str, size: int | None,
                fingerprint: dict) -> tuple[dict, np.ndarray] | None:
    try:
        meta = json.loads((cache_dir / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION:
        return None
    if (meta.get("source") != str(path.resolve()) or meta.get("level") != level
            or meta.get("size_cap") != size or meta.get("fingerprint") != fingerprint):
        return None  # another file, or the file changed since it was encoded
    name = meta.get("ids_file")
    if not isinstance(name, str) or "/" in name or "\\" in name:
        return None
    try:
        ids = np.load(cache_dir / name, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if ids.ndim != 1 or len(ids) != meta.get("n_tokens") or ids.dtype.kind not in "ui":
        return None
    return meta, ids


def _cached_file_corpus(spec: str, level: str, val_fraction: float, size: int | None,
                        cache_dir: Path) -> Corpus:
    path = _check_path(spec)
    try:
        fingerprint = _fingerprint(path)
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    key = _cache_key(path, level, size)
    hit = _read_cache(cache_dir, key, path, level, size, fingerprint)
    if hit is not None:
        meta, ids = hit
        try:
            vocab = Vocab.from_dict(meta["vocab"])
        except Exception:  # noqa: BLE001 - a damaged sidecar is a cache miss
            hit = None
    if hit is None:
        _, text = _read_text(spec)
        if size is not None and level == "char":
            text = text[:size]
        vocab, ids = _encode_file_text(text, level)
        if size is not None:
            ids = ids[:size]
        examples = _examples_from_text(text)
        del text
        meta = {
            "version": CACHE_VERSION, "source": str(path.resolve()), "level": level, "size_cap": size,
            "fingerprint": fingerprint, "vocab": vocab.to_dict(), "n_tokens": int(len(ids)),
            "dtype": ids.dtype.str, "examples": list(examples),
            "ids_file": f"{key}-{hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:12]}.npy",
        }
        try:
            unchanged = _fingerprint(path) == fingerprint
        except OSError:
            unchanged = False
        note = (_write_cache(cache_dir, key, meta, ids) if unchanged
                else f"{path} changed while it was read: encoding not cached")
        if note is None:  # serve the memory map, as every later run will
            try:
                ids = np.load(cache_dir / meta["ids_file"], mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                pass
        meta["note"] = note
    train, val, _, _ = _split(path.name, ids, val_fraction)
    unit = "characters" if level == "char" else "words"
    description = f"{path}: {len(ids)} {unit}, {len(vocab)} distinct tokens"
    if hit is None and meta.get("note"):
        description += f" ({meta['note']})"
    return Corpus(
        name=path.name,
        vocab=vocab,
        train=train,
        val=val,
        description=description,
        examples=tuple(meta.get("examples") or ()),
    )


def _write_cache(cache_dir: Path, key: str, meta: dict, ids: np.ndarray) -> str | None:
    """Write the ids, then the sidecar (the commit point); None, or why the cache was not written."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(cache_dir / meta["ids_file"], lambda fh: np.save(fh, np.ascontiguousarray(ids),
                                                                         allow_pickle=False))
        text = json.dumps(meta, ensure_ascii=False, indent=1) + "\n"
        _write_atomic(cache_dir / f"{key}.json", lambda fh: fh.write(text.encode("utf-8")))
    except OSError as exc:
        return f"encoding not cached in {cache_dir}: {exc.strerror or exc}"
    for old in cache_dir.glob(f"{key}-*.npy"):  # earlier encodings of a file that has changed
        if old.name != meta["ids_file"]:
            try:
                old.unlink()
            except OSError:
                pass
    return None


# The toy languages' alphabet. Their char vocab is all of it, not just the letters the
# sentences happen to use, so an unseen word such as "zog" can still be encoded and probed.
TOY_ALPHABET = " .abcdefghijklmnopqrstuvwxyz"


def _text_corpus(name, text, level, val_fraction, categories, description, examples) -> Corpus:
    if level == "char":
        vocab = Vocab(tokens=tuple(sorted(set(TOY_ALPHABET) | set(text))), level="char")
    else:
        vocab = Vocab.build(text, level)
    ids, _, _ = vocab._ids(text, "unk")
    train, val, _, _ = _split(f"corpus {name!r}", ids, val_fraction)
    return Corpus(
        name=name,
        vocab=vocab,
        train=train,
        val=val,
        categories=categories,
        description=description,
        examples=examples,
    )


# --------------------------------------------------------------------------------------------
# grammar: Elman (1990), "Finding structure in time", section on word categories

GRAMMAR_LEXICON: dict[str, tuple[str, ...]] = {
    "NOUN_HUMAN": ("man", "woman", "girl", "boy"),
    "NOUN_ANIMAL": ("cat", "dog", "mouse", "lion", "dragon", "monster"),
    "NOUN_FOOD": ("cookie", "bread", "sandwich"),
    "NOUN_OBJECT": ("book", "rock", "glass", "plate"),
    "VERB_INTRAN": ("sleeps", "thinks", "smiles"),
    "VERB_TRAN": ("sees", "chases", "likes", "smells"),
    "VERB_READ": ("reads",),
    "VERB_EAT": ("eats",),
    "VERB_BREAK": ("breaks", "smashes"),
    "VERB_PAST": ("saw", "chased", "met"),
    "ADJ": ("happy", "sad", "hungry", "tired", "small"),
    "ADVERB": ("yesterday", "today"),
    "FUNCTION": ("the", "that", "we", "they", "was", "were"),
}

# (weight, template). An UPPER slot draws from that lexicon category ("A|B" pools several);
# a lower slot is a literal word ("we|they" picks one). Templates name categories, never
# words, so a changed lexicon (e.g. an unseen "zog" as the only human noun) reuses them.
GRAMMAR_TEMPLATES: tuple[tuple[float, str], ...] = (
    (1.0, "the NOUN_HUMAN VERB_EAT the NOUN_FOOD"),
    (1.0, "the NOUN_HUMAN VERB_TRAN the NOUN_OBJECT"),
    (1.0, "the NOUN_HUMAN VERB_BREAK the NOUN_OBJECT"),
    (1.0, "the NOUN_HUMAN VERB_INTRAN"),
    (1.0, "the NOUN_HUMAN VERB_TRAN the NOUN_HUMAN"),
    (1.0, "the NOUN_HUMAN VERB_TRAN the NOUN_ANIMAL"),
    (1.0, "the NOUN_HUMAN VERB_READ the book"),
    (1.0, "the NOUN_ANIMAL VERB_EAT the NOUN_FOOD"),
    (1.0, "the NOUN_ANIMAL VERB_TRAN the NOUN_ANIMAL"),
    (1.0, "the NOUN_ANIMAL VERB_INTRAN"),
    (1.0, "the NOUN_ANIMAL VERB_EAT the NOUN_HUMAN"),
    (1.0, "the NOUN_ANIMAL VERB_BREAK the NOUN_OBJECT"),
    # Relative clauses, weighted up so the app's default sentence is a typical one.
    (2.0, "the NOUN_HUMAN|NOUN_ANIMAL that we|they VERB_PAST ADVERB was ADJ"),
    (1.5, "the NOUN_HUMAN|NOUN_ANIMAL that we|they VERB_PAST was ADJ"),
    (1.0, "the NOUN_HUMAN|NOUN_ANIMAL that VERB_TRAN the NOUN_HUMAN|NOUN_ANIMAL VERB_INTRAN"),
    (1.0, "the NOUN_HUMAN|NOUN_ANIMAL was ADJ"),
    (0.5, "we|they were ADJ"),
    (0.5, "we|they VERB_PAST the NOUN_HUMAN|NOUN_ANIMAL ADVERB"),
)

GRAMMAR_SIZE = 10000
DEFAULT_SENTENCE = "the cat that we saw yesterday was happy"


def _compile_templates(lexicon: Mapping[str, Sequence[str]]) -> list[list[tuple[str, ...]]]:
    compiled = []
    for _, template in GRAMMAR_TEMPLATES:
        slots = []
        for slot in template.split():
            if slot.isupper():
                words: list[str] = []
                for cat in slot.split("|"):
                    if not lexicon.get(cat):
                        raise ConfigError(f"grammar lexicon has no words in category {cat!r}")
                    words.extend(lexicon[cat])
                slots.append(tuple(words))
            else:
                slots.append(tuple(slot.split("|")))
        compiled.append(slots)
    return compiled


def grammar_sentences(
    n: int, seed: int = 0, lexicon: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """n sentences of the toy grammar, each ending in "."; deterministic given seed and lexicon."""
    if n < 0:
        raise ConfigError(f"number of sentences must not be negative, got {n}")
    compiled = _compile_templates(GRAMMAR_LEXICON if lexicon is None else lexicon)
    weights = [w for w, _ in GRAMMAR_TEMPLATES]
    rng = random.Random(seed)
    chosen = rng.choices(range(len(compiled)), weights=weights, k=n)
    return [" ".join(rng.choice(slot) for slot in compiled[t]) + "." for t in chosen]


def grammar_categories(lexicon: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """word -> category for every lexicon word."""
    lexicon = GRAMMAR_LEXICON if lexicon is None else lexicon
    return {w: cat for cat, words in lexicon.items() for w in words}


def _grammar_corpus(level, seed, val_fraction, size) -> Corpus:
    n = GRAMMAR_SIZE if size is None else size
    text = " ".join(grammar_sentences(n, seed))
    n_words = sum(len(w) for w in GRAMMAR_LEXICON.values())
    return _text_corpus(
        "grammar",
        text,
        level,
        val_fraction,
        grammar_categories(),
        f"Elman-style toy grammar: {n} sentences over {n_words} words in "
        f"{len(GRAMMAR_LEXICON)} categories",
        (
            DEFAULT_SENTENCE,
            "the girl reads the book",
            "the lion chases the mouse",
            "the dragon eats the man",
        ),
    )


# --------------------------------------------------------------------------------------------
# parity: Elman's temporal XOR

PARITY_SIZE = 20000
PARITY_MIN_BITS = 2
PARITY_MAX_BITS = 16


def parity_stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids, targets) over the vocab (".", "0", "1"): each sequence is "." then its bits; the
    target at a bit is the parity of the bits since the last ".", the target at "." is "."."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(PARITY_MIN_BITS, PARITY_MAX_BITS + 1, size=n)
    total = int(lengths.sum()) + n
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    is_sep = np.zeros(total, dtype=bool)
    is_sep[starts] = True
    bits = rng.integers(0, 2, size=total)
    bits[is_sep] = 0
    # Running parity per sequence: a global cumulative sum minus its value at the sequence start.
    csum = np.cumsum(bits)
    seg = np.cumsum(is_sep) - 1
    parity = (csum - csum[starts][seg]) % 2
    ids = np.where(is_sep, 0, 1 + bits).astype(np.int64)
    targets = np.where(is_sep, 0, 1 + parity).astype(np.int64)
    return ids, targets


def _parity_corpus(level, seed, val_fraction, size) -> Corpus:
    if level != "char":
        raise ConfigError("the parity corpus is character level only (tokens '.', '0', '1')")
    n = PARITY_SIZE if size is None else size
    ids, targets = parity_stream(n, seed)
    train, val, train_t, val_t = _split("corpus 'parity'", ids, val_fraction, targets)
    return Corpus(
        name="parity",
        vocab=Vocab(tokens=(".", "0", "1"), level="char"),
        train=train,
        val=val,
        train_targets=train_t,
        val_targets=val_t,
        categories=None,
        description=(
            f"temporal XOR (Elman 1990): {n} bit sequences of {PARITY_MIN_BITS}-{PARITY_MAX_BITS} "
            "bits; after each bit, the target is the parity of the bits since the last '.'"
        ),
        examples=(".0110", ".1011001", ".111"),
    )


# --------------------------------------------------------------------------------------------
# agreement: subject-verb agreement across a distractor clause

AGREEMENT_SIZE = 8000
AGREEMENT_MAX_DISTRACTOR = 12

_AGR_NOUNS = (
    ("cat", "cats"), ("dog", "dogs"), ("girl", "girls"), ("boy", "boys"),
    ("man", "men"), ("woman", "women"), ("mouse", "mice"), ("lion", "lions"),
)  # fmt: skip
_AGR_PLACES = (("river", "rivers"), ("tree", "trees"), ("house", "houses"), ("garden", "gardens"))
_AGR_PRONOUNS = (("he", "she"), ("we", "they"))  # (singular, plural)
_AGR_PREPS = ("near", "with", "behind")
_AGR_PAST_INTRAN = ("slept", "waited", "played")
_AGR_PAST_TRAN = ("saw", "chased", "liked", "met")
_AGR_ADJ = ("happy", "sad", "hungry", "tired", "old", "small")
_AGR_ADV1 = ("yesterday", "today", "again")
_AGR_ADV2 = (("last", "night"), ("every", "day"))


@dataclass(frozen=True)
class AgreementItem:
    text: str  # the whole sentence, ending in "."
    prefix: str  # up to and including the space before the verb
    correct: str  # "was" or "were"
    wrong: str
    distractor_words: int  # words between "that" and the verb (0: no clause)
    plural: bool  # number of the subject


def _distractor(rng: random.Random, n: int, plural: bool, opposite: bool) -> list[str]:
    """Exactly n words after "that": a core clause, then prepositional phrases and an adverb."""

    def number() -> int:
        # "opposite" makes every noun an attractor (the hard test case). Otherwise each noun's
        # number is a coin flip, independent of the subject: a corpus where clause nouns were
        # mostly attractors would let "disagree with the last noun" stand in for memory.
        if opposite:
            return 0 if plural else 1
        return rng.randrange(2)

    core = rng.choice([c for c in (1, 2, 3) if c <= n])
    if core == 1:
        words = [rng.choice(_AGR_PAST_INTRAN)]
    elif core == 2:
        words = [rng.choice(_AGR_PRONOUNS[number()]), rng.choice(_AGR_PAST_TRAN)]
    elif rng.random() < 0.5:
        words = ["the", rng.choice(_AGR_NOUNS)[number()], rng.choice(_AGR_PAST_TRAN)]
    else:
        words = [rng.choice(_AGR_PAST_TRAN), "the", rng.choice(_AGR_NOUNS)[number()]]
    # Any remainder is reachable: k phrases of 3 words, then an adverb of 1 or 2 words.
    rest = n - core
    for _ in range(rest // 3):
        words += [rng.choice(_AGR_PREPS), "the", rng.choice(_AGR_PLACES)[number()]]
    if rest % 3 == 1:
        words.append(rng.choice(_AGR_ADV1))
    elif rest % 3 == 2:
        words.extend(rng.choice(_AGR_ADV2))
    return words


def _agreement_item(rng: random.Random, n: int, plural: bool, opposite: bool) -> AgreementItem:
    subject = rng.choice(_AGR_NOUNS)[int(plural)]
    words = ["the", subject]
    if n > 0:
        words += ["that", *_distractor(rng, n, plural, opposite)]
    prefix = " ".join(words) + " "
    correct, wrong = ("were", "was") if plural else ("was", "were")
    text = f"{prefix}{correct} {rng.choice(_AGR_ADJ)}."
    return AgreementItem(text, prefix, correct, wrong, n, plural)


def agreement_items(
    distractor_words: int, n: int, seed: int = 0, *, opposite: bool = True
) -> list[AgreementItem]:
    """n test sentences with exactly ``distractor_words`` words between "that" and the verb,
    half singular and half plural subjects. With ``opposite`` (the default, the hard case)
    every noun and pronoun in the clause has the other number from the subject."""
    if distractor_words < 0:
        raise ConfigError(f"distractor_words must not be negative, got {distractor_words}")
    if n < 0:
        raise ConfigError(f"number of items must not be negative, got {n}")
    rng = random.Random(seed)
    return [_agreement_item(rng, distractor_words, i % 2 == 1, opposite) for i in range(n)]


def agreement_categories() -> dict[str, str]:
    cats: dict[str, str] = {"the": "FUNCTION", "that": "FUNCTION", "was": "VERB_SG", "were": "VERB_PL"}
    for sg, pl in _AGR_NOUNS + _AGR_PLACES:
        cats[sg], cats[pl] = "NOUN_SG", "NOUN_PL"
    for w in _AGR_PRONOUNS[0]:
        cats[w] = "PRON_SG"
    for w in _AGR_PRONOUNS[1]:
        cats[w] = "PRON_PL"
    for w in _AGR_PAST_INTRAN + _AGR_PAST_TRAN:
        cats[w] = "VERB_PAST"
    for w in _AGR_PREPS:
        cats[w] = "PREP"
    for w in _AGR_ADJ:
        cats[w] = "ADJ"
    for w in _AGR_ADV1 + tuple(w for pair in _AGR_ADV2 for w in pair):
        cats[w] = "ADVERB"
    return cats


def _agreement_corpus(level, seed, val_fraction, size) -> Corpus:
    n = AGREEMENT_SIZE if size is None else size
    rng = random.Random(seed)
    sentences = [
        _agreement_item(rng, rng.randint(0, AGREEMENT_MAX_DISTRACTOR), rng.random() < 0.5, False).text
        for _ in range(n)
    ]
    return _text_corpus(
        "agreement",
        " ".join(sentences),
        level,
        val_fraction,
        agreement_categories(),
        f"subject-verb agreement: {n} sentences, 0-{AGREEMENT_MAX_DISTRACTOR} distractor words "
        "between the subject and 'was'/'were'",
        (
            "the cat that we saw yesterday was happy",
            "the cats that the dogs chased near the river were happy",
        ),
    )


# --------------------------------------------------------------------------------------------
# Batches for truncated backpropagation through time


class BatchStream:
    """Cuts a token stream into ``batch`` contiguous rows and serves ``seq_len`` windows.

    Row b of window k+1 continues exactly where row b of window k stopped, so a trainer can
    carry the hidden state across windows. When ``at_row_start`` is true the next window
    starts the rows again (a wrap), and carried state should be reset.
    """

    def __init__(
        self,
        ids: np.ndarray,
        targets: np.ndarray | None,
        batch: int,
        seq_len: int,
        device: str | torch.device = "cpu",
        *,
        name: str = "corpus",
        split: str = "training",
    ) -> None:
        if batch < 1 or seq_len < 1:
            raise ConfigError(f"batch and seq_len must be at least 1, got {batch} and {seq_len}")
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1:
            raise ConfigError(f"a token stream must be 1-D, got shape {ids.shape}")
        if targets is not None:
            targets = np.asarray(targets, dtype=np.int64)
            if targets.shape != ids.shape:
                raise ConfigError(f"targets shape {targets.shape} does not match ids shape {ids.shape}")
        # Next-token labels need one token past each window; explicit targets do not.
        extra = 1 if targets is None else 0
        need = batch * (seq_len + extra)
        if len(ids) < need:
            raise CorpusError(
                f"corpus {name!r} has {len(ids)} {split} tokens; one batch of {batch} x {seq_len} "
                f"needs at least {need}: use a smaller --batch or --seq-len, or a longer text"
            )
        self.batch = batch
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.has_targets = targets is not None
        self.row_len = len(ids) // batch
        self.windows_per_epoch = (self.row_len - extra) // seq_len
        rows = ids[: batch * self.row_len].reshape(batch, self.row_len)
        # Time-major storage makes every window one contiguous slice, which a pinned host
        # tensor can copy to the GPU asynchronously.
        if targets is None:
            data = np.ascontiguousarray(rows.T)
        else:
            trows = targets[: batch * self.row_len].reshape(batch, self.row_len)
            data = np.ascontiguousarray(np.stack([rows.T, trows.T], axis=-1))
        tensor = torch.from_numpy(data)
        if self.device.type == "cuda" and tensor.numel() * 8 > _ON_DEVICE_BYTES:
            tensor = tensor.pin_memory()
        elif self.device.type != "cpu":
            tensor = tensor.to(self.device)  # small enough to live on the device: no copy per step
        self._data = tensor
        self.epoch = 0
        self.window = 0

    @property
    def progress(self) -> float:
        """Epochs done, fractional."""
        return self.epoch + self.window / self.windows_per_epoch

    @property
    def at_row_start(self) -> bool:
        return self.window == 0

    @property
    def tokens_per_window(self) -> int:
        return self.batch * self.seq_len

    def reset(self) -> None:
        self.epoch = 0
        self.window = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) LongTensors [batch, seq_len] on the device."""
        start = self.window * self.seq_len
        if self.has_targets:
            w = self._data[start : start + self.seq_len]
            w = w.to(self.device, non_blocking=True)
            x, y = w[..., 0].t().contiguous(), w[..., 1].t().contiguous()
        else:
            w = self._data[start : start + self.seq_len + 1]
            w = w.to(self.device, non_blocking=True)
            x, y = w[:-1].t().contiguous(), w[1:].t().contiguous()
        self.window += 1
        if self.window == self.windows_per_epoch:
            self.window = 0
            self.epoch += 1
        return x, y

    __next__ = next

    def __iter__(self) -> "BatchStream":
        return self
