"""Text files read and encoded a chunk at a time, so memory stays flat however large the file.

`text_chunks` decodes a UTF-8 file piece by piece with the checks a whole-file read makes
(empty, UTF-16, NUL bytes, invalid UTF-8 with its byte offset, only whitespace), drops a
leading BOM and turns CRLF into LF across chunk boundaries too.

`encode_chars` and `encode_words` give the vocabulary and the ids that `Vocab.build(text,
level)` and `vocab.encode(text, "unk")` give for the whole text, bit for bit, written through a
sink one chunk at a time in the smallest integer type that holds the vocabulary:

- characters: one pass for the vocabulary (the code points present), one to encode;
- words: one pass. A vectorised tokeniser finds the tokens of `\\w+|[^\\w\\s]` from a per-code
  point class table, packs each short token into one 64-bit key (its characters' ranks in the
  chunk's alphabet: exact, no hashing), finds the distinct keys with one sort and gives each
  token a provisional id in order of first appearance (only the distinct tokens are Python
  strings); the few long tokens go through Python. The counts then give the vocabulary (the
  most frequent words, ties by first appearance, as `Counter.most_common`), and one pass
  over the provisional ids maps them to the final ones.
"""

from __future__ import annotations

import codecs
import math
import re
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import CorpusError
from .vocab import UNK, Vocab

CHUNK_BYTES = 1 << 22  # 4 MiB of the file at a time
EXAMPLE_CHARS = 20000  # the head of the text that examples are taken from

_WORD = re.compile(r"\w")
_SPACE = re.compile(r"\s")
_CLASS_CACHE: dict[int, int] = {}  # code point -> 0 space, 1 word character, 2 other (punctuation)


def id_dtype(n_tokens: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_tokens <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.int64)


# ------------------------------------------------------------------------ reading
def text_chunks(path: Path, chunk_bytes: int | None = None, cut_at_space: bool = False) -> Iterator[str]:
    """The file's text in pieces (BOM dropped, CRLF -> LF), with a CorpusError for a file that
    is not UTF-8 text. With `cut_at_space` every piece but the last ends just before a
    whitespace character, so no word token is split between two pieces. `chunk_bytes` of the
    file are read at a time (CHUNK_BYTES by default)."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    try:
        fh = open(path, "rb")
    except PermissionError:
        raise CorpusError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes of the file before this chunk
    first = True
    seen_text = False
    carry = ""  # text held back: a trailing "\r" (CRLF may straddle chunks) or a cut-off word
    with fh:
        while True:
            try:
                data = fh.read(chunk_bytes)
            except OSError as exc:
                raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
            final = len(data) < chunk_bytes
            if first:
                if not data:
                    raise CorpusError(f"{path} is empty")
                if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    raise CorpusError(f"{path} looks like UTF-16 text: save it as UTF-8")
            nul = data.find(b"\x00")
            if nul >= 0:
                raise CorpusError(f"{path} looks like a binary file (NUL byte at byte offset {offset + nul}), "
                                  "not UTF-8 text")
            pending = len(decoder.getstate()[0])  # bytes of a character cut off by the last chunk
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as exc:  # exc.object is those pending bytes + this chunk
                at = offset - pending + exc.start
                raise CorpusError(f"{path} is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at byte "
                                  f"offset {at} cannot be decoded") from None
            offset += len(data)
            if first:
                first = False
                if text.startswith("\ufeff"):
                    text = text[1:]
            text = carry + text
            carry = ""
            if not final and text.endswith("\r"):  # its "\n" may open the next chunk
                text, carry = text[:-1], "\r"
            if "\r\n" in text:  # Windows line ends would otherwise add "\r" to the vocabulary
                text = text.replace("\r\n", "\n")
            if not final and cut_at_space:
                cut = _last_space(text)
                if cut < 0:  # no whitespace at all yet: keep reading
                    carry = text + carry
                    continue
                text, carry = text[:cut], text[cut:] + carry
            if not seen_text and text and not text.isspace():
                seen_text = True
            if text:
                yield text
            if final:
                break
    if not seen_text:
        raise CorpusError(f"{path} contains only whitespace")


def _last_space(text: str) -> int:
    cut = max(text.rfind(" "), text.rfind("\n"))
    if cut < 0:
        m = re.search(r"\s(?=\S*\Z)", text)
        cut = m.start() if m else -1
    return cut


def examples_from_text(text: str, limit: int = 3, width: int = 80) -> tuple[str, ...]:
    out: list[str] = []
    # Only the head of the text: a huge file must not be split into lines just for this.
    for line in text[:EXAMPLE_CHARS].splitlines():
        line = line.strip()
        if line:
            out.append(line[:width])
            if len(out) == limit:
                break
    return tuple(out)


def _codes(text: str) -> np.ndarray:
    """The code points of a text: uint8 for ASCII (a copy of its bytes), else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _lut(keys: np.ndarray, values: np.ndarray, dtype) -> np.ndarray:
    """A dense table over code points 0..max(keys) (at most 0x110000 entries)."""
    out = np.zeros(int(keys.max()) + 1 if keys.size else 1, dtype=dtype)
    out[keys] = values
    return out


# ------------------------------------------------------------------------ sinks
class ArraySink:
    """Collects the ids in memory: `result()` is one array."""

    def __init__(self, n: int | None = None, dtype=None):
        self.parts: list[np.ndarray] = []
        self.out = None if n is None else np.empty(n, dtype=dtype)
        self.n = 0

    def write(self, ids: np.ndarray) -> None:
        if self.out is not None:
            self.out[self.n:self.n + len(ids)] = ids
        else:
            self.parts.append(np.array(ids, copy=True))
        self.n += len(ids)

    def result(self) -> np.ndarray:
        if self.out is not None:
            return self.out[:self.n]
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.uint32)


# ------------------------------------------------------------------------ characters
def encode_chars(chunks: Callable[[], Iterator[str]], size: int | None,
                 sink_for: Callable[[int, np.dtype], object]) -> tuple[Vocab, object, int, tuple[str, ...]]:
    """(vocab, sink, n_tokens, examples): two passes over `chunks()` (a fresh iterator each).

    `sink_for(n, dtype)` makes the sink the ids are written to once their number and type are
    known. Like Vocab.build(text[:size], "char") and its encoding."""
    present = np.zeros(128, dtype=bool)
    extra: set[int] = set()
    n = 0
    head = ""
    for text in chunks():
        if size is not None and n + len(text) > size:
            text = text[:size - n]
        if len(head) < EXAMPLE_CHARS:
            head += text[:EXAMPLE_CHARS - len(head)]
        codes = _codes(text)
        if codes.dtype == np.uint8:
            present |= np.bincount(codes, minlength=128)[:128] > 0
        else:
            u = np.unique(codes)
            present[u[u < 128]] = True
            extra.update(int(c) for c in u[u >= 128])
        n += len(text)
        if size is not None and n >= size:
            break
    if n == 0:
        raise CorpusError("cannot build a vocabulary from empty text")
    table = np.concatenate([np.flatnonzero(present), np.array(sorted(extra), dtype=np.int64)])
    vocab = Vocab(tokens=tuple(chr(int(c)) for c in table), level="char")
    dtype = id_dtype(len(table))
    lut = _lut(table, np.arange(len(table)), dtype)  # code point -> id (sorted characters)
    ascii_lut = np.zeros(128, dtype=dtype)
    ascii_lut[:min(128, len(lut))] = lut[:128]
    sink = sink_for(n, dtype)
    done = 0
    for text in chunks():
        if done + len(text) > n:
            text = text[:n - done]
        codes = _codes(text)
        ids = ascii_lut[codes] if codes.dtype == np.uint8 else lut[codes]
        sink.write(ids)
        done += len(ids)
        if done >= n:
            break
    return vocab, sink, n, examples_from_text(head)


# ------------------------------------------------------------------------ words
def _classes(alphabet: np.ndarray) -> np.ndarray:
    """0 whitespace, 1 word character, 2 anything else, for each code point of `alphabet`."""
    out = np.empty(len(alphabet), dtype=np.uint8)
    for i, c in enumerate(alphabet.tolist()):
        k = _CLASS_CACHE.get(c)
        if k is None:
            ch = chr(c)
            k = _CLASS_CACHE[c] = 1 if _WORD.match(ch) else 0 if _SPACE.match(ch) else 2
        out[i] = k
    return out


_ASCII_CLASSES: list[np.ndarray] = []


def _ascii_classes() -> np.ndarray:
    if not _ASCII_CLASSES:
        _ASCII_CLASSES.append(_classes(np.arange(128)))
    return _ASCII_CLASSES[0]


class _KeyTable:
    """Exact lookup of uint64 keys: open addressing (a table 4x the keys), vectorised; a query
    that is not one of the keys gives -1."""

    MULT = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: np.ndarray, values: np.ndarray | None = None):
        self.bits = max(4, int(math.ceil(math.log2(max(1, len(keys)) * 4))))
        size = 1 << self.bits
        self.mask = np.uint64(size - 1)
        self.keys = np.zeros(size, dtype=np.uint64)
        self.vals = np.full(size, -1, dtype=np.int64)
        values = np.arange(len(keys)) if values is None else np.asarray(values, dtype=np.int64)
        pend = np.arange(len(keys))
        slot = self._slot(keys)
        while pend.size:
            free = self.vals[slot] < 0
            cand, cs = pend[free], slot[free]
            _, first = np.unique(cs, return_index=True)
            win, ws = cand[first], cs[first]
            self.keys[ws] = keys[win]
            self.vals[ws] = values[win]
            placed = np.zeros(len(keys), dtype=bool)
            placed[win] = True
            keep = ~placed[pend]
            pend, slot = pend[keep], (slot[keep] + np.uint64(1)) & self.mask

    def _slot(self, q: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (q * self.MULT) >> np.uint64(64 - self.bits)

    def lookup(self, q: np.ndarray) -> np.ndarray:
        slot = self._slot(q)
        res = self.vals[slot]
        todo = np.flatnonzero((res >= 0) & (self.keys[slot] != q))  # occupied by another key
        res[todo] = -1
        while todo.size:
            s = (slot[todo] + np.uint64(1)) & self.mask
            slot[todo] = s
            v = self.vals[s]
            hit = (v >= 0) & (self.keys[s] == q[todo])
            res[todo[hit]] = v[hit]
            todo = todo[(v >= 0) & ~hit]  # an empty slot ends the probe: not a key
        return res


class WordCounter:
    """Provisional ids (first appearance) and counts of the word-level tokens of a stream."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.counts = np.zeros(1024, dtype=np.int64)
        # Short ASCII tokens' keys are their bytes, the same in every chunk: those seen so far
        # and their provisional ids, so a later chunk only works out the tokens it is the first
        # to have.
        self._known_keys = np.zeros(0, dtype=np.uint64)
        self._known_ids = np.zeros(0, dtype=np.int64)
        self._known: _KeyTable | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def _intern(self, tokens: list[str]) -> np.ndarray:
        ids, out = self.ids, np.empty(len(tokens), dtype=np.int64)
        for i, tok in enumerate(tokens):
            j = ids.get(tok)
            if j is None:
                j = ids[tok] = len(ids)
            out[i] = j
        return out

    def add(self, text: str) -> np.ndarray:
        """The provisional ids of the tokens of `text` (uint32), in order; counts updated."""
        codes = _codes(text)
        n = len(codes)
        if n == 0:
            return np.zeros(0, dtype=np.uint32)
        ranks = present = None
        if codes.dtype == np.uint8:
            cls = _ascii_classes()[codes]
        else:
            present = np.unique(codes)
            # Each character's class and its rank in this chunk's alphabet (1..A; 0 pads a key).
            cls = _lut(present, _classes(present), np.uint8)[codes]
            rank_dtype = np.uint8 if len(present) < 255 else np.uint32
            ranks = _lut(present, np.arange(1, len(present) + 1), rank_dtype)[codes]
        # Tokens: maximal runs of word characters, and every other non-space character alone.
        word = cls == 1
        other = cls == 2
        starts_run = word.copy()
        starts_run[1:] &= ~word[:-1]
        ends_run = word.copy()
        ends_run[:-1] &= ~word[1:]
        starts = np.flatnonzero(starts_run | other)
        ends = np.flatnonzero(ends_run | other) + 1
        if starts.size == 0:
            return np.zeros(0, dtype=np.uint32)
        ascii_keys = codes.dtype == np.uint8
        keys = self._ascii_keys(text, codes, starts, ends) if ascii_keys else \
            self._rank_keys(text, present, ranks, starts, ends)
        out = np.empty(len(keys), dtype=np.int64)
        rest = None
        if ascii_keys and self._known is not None:
            out[:] = self._known.lookup(keys)
            rest = np.flatnonzero(out < 0)
        new_keys = keys if rest is None else keys[rest]
        if new_keys.size:  # the tokens not known yet: their distinct keys, by first appearance
            uniq = np.unique(new_keys)
            inv = _KeyTable(uniq).lookup(new_keys)
            first = np.full(len(uniq), len(new_keys), dtype=np.int64)
            np.minimum.at(first, inv, np.arange(len(new_keys)))
            order = np.argsort(first, kind="stable")
            at = first[order] if rest is None else rest[first[order]]
            prov = np.empty(len(uniq), dtype=np.int64)
            prov[order] = self._intern([text[a:b] for a, b in zip(starts[at].tolist(), ends[at].tolist())])
            if rest is None:
                out[:] = prov[inv]
            else:
                out[rest] = prov[inv]
            if ascii_keys:  # remember the short ones (bit 63 clear: their bytes) for later chunks
                short = (uniq >> np.uint64(63)) == 0
                self._known_keys = np.concatenate([self._known_keys, uniq[short]])
                self._known_ids = np.concatenate([self._known_ids, prov[short]])
                self._known = _KeyTable(self._known_keys, self._known_ids)
        if len(self.ids) > len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(max(len(self.ids), len(self.counts)),
                                                                dtype=np.int64)])
        self.counts[:len(self.ids)] += np.bincount(out, minlength=len(self.ids))
        return out.astype(np.uint32)

    @staticmethod
    def _long_keys(text: str, starts: np.ndarray, ends: np.ndarray, tag: int) -> np.ndarray:
        """Keys for tokens too long to pack: by their text (Python strings, a few of them)."""
        local: dict[str, int] = {}
        ids = np.fromiter((local.setdefault(text[a:b], len(local)) for a, b in zip(starts.tolist(), ends.tolist())),
                          dtype=np.uint64, count=len(starts))
        return ids | np.uint64(tag)

    @classmethod
    def _ascii_keys(cls, text, codes, starts, ends) -> np.ndarray:
        """ASCII: a token of up to 8 bytes is its bytes read as one little-endian uint64 (an
        unaligned load; bit 63 stays 0 since ASCII < 0x80); longer ones (a few in English) by
        their text."""
        n = len(codes)
        buf = np.zeros(n + 16, dtype=np.uint8)
        buf[:n] = codes
        load = np.ndarray((n + 8,), dtype="<u8", buffer=buf.data, strides=(1,))
        masks = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
        lens = ends - starts
        keys = load[starts] & masks[np.minimum(lens, 8)]  # longer ones are replaced below
        long_ = np.flatnonzero(lens > 8)
        if long_.size:
            keys[long_] = cls._long_keys(text, starts[long_], ends[long_], 1 << 63)
        return keys

    @classmethod
    def _rank_keys(cls, text, present, ranks, starts, ends) -> np.ndarray:
        """Any text: a short token is its characters' ranks in the chunk's alphabet (1..A),
        `bits` bits each, packed into one key; longer ones by their text."""
        lens = ends - starts
        bits = max(1, int(len(present)).bit_length())
        width = 63 // bits
        keys = np.zeros(len(starts), dtype=np.uint64)
        active = np.flatnonzero(lens <= width)
        long_ = np.flatnonzero(lens > width)
        sh = np.uint64(bits)
        j = 0
        while active.size:
            keys[active] = (keys[active] << sh) | ranks[starts[active] + j].astype(np.uint64)
            j += 1
            active = active[lens[active] > j]
        if long_.size:
            keys[long_] = cls._long_keys(text, starts[long_], ends[long_], 1 << 63)
        return keys

    def vocab(self, max_words: int) -> tuple[Vocab, np.ndarray]:
        """The vocabulary Vocab.build would make, and the map provisional id -> its id."""
        n = len(self.ids)
        counts = self.counts[:n]
        order = np.lexsort((np.arange(n), -counts))[:max_words]  # count desc, first appearance
        words = list(self.ids)  # insertion order = provisional id order
        vocab = Vocab(tokens=(UNK, *(words[i] for i in order.tolist())), level="word", unk=UNK)
        remap = np.zeros(n, dtype=id_dtype(len(vocab)))  # 0 is <unk>: beyond max_words
        remap[order] = np.arange(1, len(order) + 1)
        return vocab, remap


def encode_words(chunks: Callable[[], Iterator[str]], size: int | None, provisional_sink,
                 max_words: int = 20000) -> tuple[Vocab, np.ndarray, int, tuple[str, ...]]:
    """(vocab, provisional -> final id map, n_tokens, examples) after one pass over `chunks()`
    (cut at whitespace) writing provisional ids (uint32) to `provisional_sink`. The vocabulary
    comes from the whole text; `size` caps the number of ids kept, as for the whole-text path."""
    counter = WordCounter()
    n = 0
    head = ""
    for text in chunks():
        if len(head) < EXAMPLE_CHARS:
            head += text[:EXAMPLE_CHARS - len(head)]
        ids = counter.add(text)
        if size is not None and n < size:
            provisional_sink.write(ids[:size - n])
        elif size is None:
            provisional_sink.write(ids)
        n += len(ids)
    if len(counter) == 0:
        raise CorpusError("cannot build a vocabulary from empty text")
    vocab, remap = counter.vocab(max_words)
    return vocab, remap, n if size is None else min(n, size), examples_from_text(head)
