"""Text files as corpora: reading a UTF-8 file (with a clear error for anything that is not
one), and the encoding cache.

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
import re
import uuid
from pathlib import Path

import numpy as np

from ..errors import CorpusError
from .base import Corpus, train_val_split
from .bundled import BUNDLED_CORPORA
from .vocab import Vocab

# Beyond this a file would take several GB as int64 ids; no CPU training run needs that much.
MAX_FILE_BYTES = 256 * 1024 * 1024


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


def file_corpus(spec: str, level: str, val_fraction: float, size: int | None) -> Corpus:
    path, text = _read_text(spec)
    if size is not None and level == "char":
        text = text[:size]
    vocab = Vocab.build(text, level)
    # Built from this very text, so only words beyond max_words can be unknown.
    ids, _, _ = vocab._ids(text, "unk")
    if size is not None:
        ids = ids[:size]
    train, val, _, _ = train_val_split(path.name, ids, val_fraction)
    unit = "characters" if level == "char" else "words"
    return Corpus(
        name=path.name,
        vocab=vocab,
        train=train,
        val=val,
        description=f"{path}: {len(ids)} {unit}, {len(vocab)} distinct tokens",
        examples=_examples_from_text(text),
        source=source_of(path),
    )


def source_of(path: Path, fingerprint: dict | None = None) -> dict | None:
    """What a run keeps of the text file it trained on, to find the same text again."""
    try:
        fp = fingerprint or _fingerprint(path)
    except OSError:
        return None
    return {"path": str(path.resolve()), "bytes": fp["bytes"], "head_tail_sha256": fp["head_tail_sha256"]}



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


def cached_file_corpus(spec: str, level: str, val_fraction: float, size: int | None,
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
    train, val, _, _ = train_val_split(path.name, ids, val_fraction)
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
        source=source_of(path, fingerprint),
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
