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

The file is read, encoded and written a chunk at a time (`stream.py`): memory stays flat
whatever its size, so the limit is what the cache takes (MAX_FILE_BYTES); without the cache the
ids are held in memory, in the same small type (MAX_MEMORY_FILE_BYTES).
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
from .stream import ArraySink, encode_chars, encode_words, id_dtype, text_chunks
from .vocab import Vocab

# The encoding cache writes the ids a chunk at a time (<= 4 bytes a token, 1 for most character
# vocabularies) and memory-maps them: files up to this size are accepted with it.
MAX_FILE_BYTES = 64 * 1024**3
# Without the cache the ids are held in memory (the same small type): up to this size.
MAX_MEMORY_FILE_BYTES = 4 * 1024**3


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


def _check_size(path: Path, limit: int, cached: bool) -> None:
    try:
        nbytes = path.stat().st_size
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    if nbytes > limit:
        hint = "use a shorter text" if cached else "use the encoding cache (drop --no-cache) or a shorter text"
        raise CorpusError(f"{path} is {nbytes / 2**30:.1f} GB; the limit is {limit // 2**30} GB"
                          f"{'' if cached else ' without the encoding cache'}: {hint}")


def _chunks(path: Path, level: str):
    """A fresh iterator over the file's text each call (the char encoder reads it twice)."""
    return lambda: text_chunks(path, cut_at_space=level == "word")


def _encode_to_memory(path: Path, level: str, size: int | None) -> tuple[Vocab, np.ndarray, tuple[str, ...]]:
    """The vocabulary and ids of a file, the ids in memory in the smallest integer type."""
    if level == "char":
        vocab, sink, _, examples = encode_chars(_chunks(path, level), size, lambda n, dt: ArraySink(n, dt))
        return vocab, sink.result(), examples
    provisional = ArraySink()
    vocab, remap, n, examples = encode_words(_chunks(path, level), size, provisional)
    ids = remap[provisional.result()[:n]]
    return vocab, ids, examples


def file_corpus(spec: str, level: str, val_fraction: float, size: int | None) -> Corpus:
    path = _check_path(spec)
    _check_size(path, MAX_MEMORY_FILE_BYTES, cached=False)
    vocab, ids, examples = _encode_to_memory(path, level, size)
    unit = "characters" if level == "char" else "words"
    return _in_memory(path, vocab, ids, val_fraction, f"{len(ids)} {unit}, {len(vocab)} distinct tokens",
                      examples)


def _in_memory(path: Path, vocab: Vocab, ids, val_fraction: float, what: str, examples) -> Corpus:
    train, val, _, _ = train_val_split(path.name, ids, val_fraction)
    return Corpus(name=path.name, vocab=vocab, train=train, val=val, description=f"{path}: {what}",
                  examples=tuple(examples), source=source_of(path))


def bpe_file_corpus(spec: str, val_fraction: float, size: int | None, bpe_vocab: int | None,
                    vocab: Vocab | None) -> Corpus:
    """A text file in subword pieces, held in memory (`cached_file_corpus` caches them)."""
    path = _check_path(spec)
    _check_size(path, MAX_MEMORY_FILE_BYTES, cached=False)
    vocab, ids, examples = _encode_bpe(path, size, bpe_vocab, vocab)
    return _in_memory(path, vocab, ids, val_fraction, _bpe_what(len(ids), vocab), examples)


def _bpe_what(n: int, vocab: Vocab) -> str:
    return f"{n} subword pieces, a vocabulary of {len(vocab)}"


def _encode_bpe(path: Path, size: int | None, bpe_vocab: int | None,
                vocab: Vocab | None) -> tuple[Vocab, np.ndarray, tuple[str, ...]]:
    """A BPE tokenizer trained on the file (read a chunk at a time), or `vocab`'s; the ids of
    the whole file, in memory. (vocab, ids, examples)."""
    from .subword import DEFAULT_BPE_VOCAB, continuation_tokenizer, train_bpe

    chunks = _chunks(path, "word")  # cut at whitespace: no piece straddles two chunks
    if vocab is None:
        vocab = Vocab.from_tokenizer(train_bpe(chunks(), bpe_vocab or DEFAULT_BPE_VOCAB))
    # Chunks after the first go on from the text before them: no word-start mark is added.
    first, rest = vocab._tok, continuation_tokenizer(vocab.tokenizer)
    dtype, parts, examples, n = id_dtype(len(vocab)), [], [], 0
    for text in chunks():
        if len(examples) < 4:
            examples += [line.strip()[:80] for line in text.splitlines() if line.strip()][:4 - len(examples)]
        ids = np.asarray((rest if parts else first).encode(text, add_special_tokens=False).ids, dtype=np.int64)
        if size is not None:
            ids = ids[:size - n]
        parts.append(ids.astype(dtype))
        n += len(ids)
        if size is not None and n >= size:
            break
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    return vocab, ids, tuple(examples)


def _bpe_variant(bpe_vocab: int | None, vocab: Vocab | None) -> str:
    """What else a BPE encoding depends on: the given tokenizer, or the size a tokenizer is
    trained to and the tokenizers release that trains it."""
    if vocab is not None:
        return "given:" + hashlib.sha256((vocab.tokenizer or "").encode("utf-8")).hexdigest()
    from .subword import DEFAULT_BPE_VOCAB, require_tokenizers

    return f"train:{bpe_vocab or DEFAULT_BPE_VOCAB}:{require_tokenizers().__version__}"


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


def _cache_key(path: Path, level: str, size: int | None, variant: str = "") -> str:
    ident = f"{path.resolve()}\0{level}\0{size}" + (f"\0{variant}" if variant else "")
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


class _NpyWriter:
    """A 1-D .npy file written a chunk at a time: the header (its length known up front), then
    the ids as they come."""

    def __init__(self, fh, n: int, dtype):
        self.fh, self.dtype, self.n, self.done = fh, np.dtype(dtype), n, 0
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                  "fortran_order": False, "shape": (n,)})

    def write(self, ids: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(ids, dtype=self.dtype).tobytes())
        self.done += len(ids)

    def close(self) -> None:
        if self.done != self.n:
            raise CorpusError(f"internal error: {self.done} ids written for {self.n}")


class _RawWriter:
    """Provisional word ids (uint32), appended to a scratch file."""

    def __init__(self, fh):
        self.fh, self.n = fh, 0

    def write(self, ids: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(ids, dtype=np.uint32).tobytes())
        self.n += len(ids)


_REMAP_CHUNK = 1 << 24  # provisional ids mapped to final ones this many at a time
# Word level: a text up to this size keeps its provisional ids (4 bytes a word) in memory; a
# larger one writes them to a scratch file next to the cache.
_PROVISIONAL_IN_MEMORY = 64 << 20


def _encode_file(path: Path, level: str, size: int | None, ids_path: Path) -> tuple[Vocab, int, tuple[str, ...]]:
    """Encode the file into `ids_path` (.npy, written atomically) a chunk at a time: memory stays
    flat. (vocab, n_tokens, examples)."""
    result: dict = {}
    if level == "char":
        def write(fh):
            writer: list[_NpyWriter] = []

            def sink_for(n, dtype):
                writer.append(_NpyWriter(fh, n, dtype))
                return writer[0]

            result["vocab"], _, result["n"], result["examples"] = encode_chars(_chunks(path, level), size, sink_for)
            writer[0].close()

        _write_atomic(ids_path, write)
        return result["vocab"], result["n"], result["examples"]
    if path.stat().st_size <= _PROVISIONAL_IN_MEMORY:  # a few words a byte at most: keep them here
        provisional = ArraySink()
        vocab, remap, n, examples = encode_words(_chunks(path, level), size, provisional)
        ids = provisional.result()

        def write(fh):
            out = _NpyWriter(fh, n, remap.dtype)
            for start in range(0, n, _REMAP_CHUNK):
                out.write(remap[ids[start:start + _REMAP_CHUNK]])
            out.close()

        _write_atomic(ids_path, write)
        return vocab, n, examples
    scratch = ids_path.parent / f".{ids_path.name}.{uuid.uuid4().hex[:12]}.provisional"
    try:
        with open(scratch, "w+b") as raw:
            vocab, remap, n, examples = encode_words(_chunks(path, level), size, _RawWriter(raw))

            def write(fh):
                out = _NpyWriter(fh, n, remap.dtype)
                raw.seek(0)
                for start in range(0, n, _REMAP_CHUNK):
                    out.write(remap[np.fromfile(raw, dtype=np.uint32, count=min(_REMAP_CHUNK, n - start))])
                out.close()

            _write_atomic(ids_path, write)
    finally:
        try:
            os.unlink(scratch)
        except OSError:
            pass
    return vocab, n, examples


def cached_file_corpus(spec: str, level: str, val_fraction: float, size: int | None,
                        cache_dir: Path, bpe_vocab: int | None = None, given: Vocab | None = None) -> Corpus:
    """A text file's encoding from the cache, or encoded now and cached. Level "bpe": subword
    pieces of a tokenizer trained to `bpe_vocab` (or of `given`), held in memory while they are
    encoded, so such a file is at most MAX_MEMORY_FILE_BYTES."""
    path = _check_path(spec)
    bpe = level == "bpe"
    _check_size(path, MAX_MEMORY_FILE_BYTES if bpe else MAX_FILE_BYTES, cached=True)
    try:
        fingerprint = _fingerprint(path)
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    variant = _bpe_variant(bpe_vocab, given) if bpe else ""
    key = _cache_key(path, level, size, variant)
    hit = _read_cache(cache_dir, key, path, level, size, fingerprint)
    if hit is not None:
        meta, ids = hit
        try:
            vocab = Vocab.from_dict(meta["vocab"])  # a bpe vocabulary checks its tokenizer's pieces
            if meta.get("variant", "") != variant or (given is not None and vocab.tokenizer != given.tokenizer):
                hit = None
        except Exception:  # noqa: BLE001 - a damaged sidecar is a cache miss
            hit = None
    if hit is None:
        meta = {
            "version": CACHE_VERSION, "source": str(path.resolve()), "level": level, "size_cap": size,
            "fingerprint": fingerprint, "variant": variant,
            "ids_file": f"{key}-{hashlib.sha256(json.dumps(fingerprint).encode()).hexdigest()[:12]}.npy",
        }
        ids = held = None
        note = None
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            if bpe:
                vocab, held, examples = _encode_bpe(path, size, bpe_vocab, given)
                n = len(held)
                _write_atomic(cache_dir / meta["ids_file"], lambda fh: _NpyWriter(fh, n, held.dtype).write(held))
            else:
                vocab, n, examples = _encode_file(path, level, size, cache_dir / meta["ids_file"])
        except OSError as exc:  # no room, no permission: encode into memory, say so
            note = f"encoding not cached in {cache_dir}: {exc.strerror or exc}"
            _check_size(path, MAX_MEMORY_FILE_BYTES, cached=False)
            if held is not None:
                ids = held
            elif bpe:
                vocab, ids, examples = _encode_bpe(path, size, bpe_vocab, given)
            else:
                vocab, ids, examples = _encode_to_memory(path, level, size)
            n = len(ids)
        meta.update({"vocab": vocab.to_dict(), "n_tokens": int(n), "dtype": id_dtype(len(vocab)).str,
                     "examples": list(examples)})
        if note is None:
            try:
                unchanged = _fingerprint(path) == fingerprint
            except OSError:
                unchanged = False
            note = (_write_sidecar(cache_dir, key, meta) if unchanged
                    else f"{path} changed while it was read: encoding not cached")
            try:  # serve the memory map, as every later run will
                ids = np.load(cache_dir / meta["ids_file"], mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise CorpusError(f"cannot read the encoding of {path} back from {cache_dir}: {exc}") from None
            if not unchanged:
                ids = np.array(ids)  # the entry is dropped: keep the ids in memory
                _drop(cache_dir / meta["ids_file"])
        meta["note"] = note
    train, val, _, _ = train_val_split(path.name, ids, val_fraction)
    unit = "characters" if level == "char" else "words"
    description = f"{path}: " + (_bpe_what(len(ids), vocab) if bpe else f"{len(ids)} {unit}, {len(vocab)} distinct tokens")
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


def _drop(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _write_sidecar(cache_dir: Path, key: str, meta: dict) -> str | None:
    """Write the sidecar (the commit point; the ids are written already); None, or why the cache
    was not written. Earlier encodings of a file that has changed are removed."""
    try:
        text = json.dumps(meta, ensure_ascii=False, indent=1) + "\n"
        _write_atomic(cache_dir / f"{key}.json", lambda fh: fh.write(text.encode("utf-8")))
    except OSError as exc:
        _drop(cache_dir / meta["ids_file"])
        return f"encoding not cached in {cache_dir}: {exc.strerror or exc}"
    for old in cache_dir.glob(f"{key}-*.npy"):
        if old.name != meta["ids_file"]:
            _drop(old)
    return None
