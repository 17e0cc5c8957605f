"""Subword tokens: a Hugging Face ``tokenizers`` model (BPE) behind a Vocab of level "bpe".

The optional extra ``pip install 'rnn-tui[bpe]'`` brings ``tokenizers``; nothing else in
rnn-tui needs it, and a run of another level never imports it. A BPE vocabulary is either
trained here on the corpus (`train_bpe`: byte-pair merges up to a vocabulary size, a space
written as a leading "▁" as SentencePiece does, a line break a piece of its own, "<unk>" for a
character the training text never had; decoding gives back the text, less a leading space) or read from a user's ``tokenizer.json`` (`read_tokenizer_file`: bounded,
a regular file, parsed by ``tokenizers`` itself, never executed). Either way the tokenizer's
whole JSON travels with the vocabulary (``Vocab.tokenizer``), so a checkpoint and its run
directory's ``tokenizer.json`` read the same tokens back without the training text.

Pieces are shown as the tokenizer writes them ("▁the", "s"), except a byte-level tokenizer's
(GPT-2's, RoBERTa's), which writes bytes as stand-in letters ("Ġthe", "Ċ", "Ã©"): `shown_pieces`
gives those as text ("▁the", a line break, "é"). Text is decoded by the tokenizer's own decoder.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Iterable

from ..errors import ConfigError, CorpusError, VocabError

UNK = "<unk>"
DEFAULT_BPE_VOCAB = 1000
MIN_BPE_VOCAB = 8
MAX_PIECE = 32  # characters: the longest stretch a trained tokenizer merges into pieces
# A tokenizer.json of a large language model is 2-20 MB; more than this is not one.
MAX_TOKENIZER_BYTES = 64 << 20
INSTALL_HINT = "pip install 'rnn-tui[bpe]' (or pip install tokenizers)"


def require_tokenizers():
    """The ``tokenizers`` module, or a ConfigError saying how to install it."""
    try:
        import tokenizers
    except ImportError:
        raise ConfigError(f"subword (BPE) tokens need the optional 'tokenizers' package: {INSTALL_HINT}") from None
    return tokenizers


@lru_cache(maxsize=16)
def tokenizer_from_json(text: str):
    """A ``tokenizers.Tokenizer`` parsed from its JSON (cached: a Vocab asks often), with its
    truncation and padding turned off: a text is read whole, never cut or padded to a length."""
    tk = require_tokenizers()
    try:
        tokenizer = tk.Tokenizer.from_str(text)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises its own Exception subclass
        raise VocabError(f"not a tokenizer.json that the tokenizers library reads: {_first_line(exc)}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@lru_cache(maxsize=16)
def continuation_tokenizer(text: str):
    """The tokenizer of `text` for a text that goes on from an earlier one (a file's next
    chunk): no word-start mark or prefix space added at its start, which only the real start
    of a text gets (Metaspace's prepend, ByteLevel's add_prefix_space, a Prepend normalizer)."""
    import json

    spec = json.loads(text)

    def visit(node):
        if isinstance(node, list):
            return [v for v in (visit(x) for x in node) if v is not None]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind == "Prepend":
            return None
        node = {k: visit(v) for k, v in node.items()}
        if kind == "Metaspace":
            node["prepend_scheme"] = "never"
            if "add_prefix_space" in node:
                node["add_prefix_space"] = False
        elif kind == "ByteLevel" and "add_prefix_space" in node:
            node["add_prefix_space"] = False
        return node

    for part in ("normalizer", "pre_tokenizer"):
        if isinstance(spec.get(part), dict):
            spec[part] = visit(spec[part])
    return tokenizer_from_json(json.dumps(spec))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def pieces_of(tokenizer) -> tuple[tuple[str, ...], str | None]:
    """The tokenizer's pieces in id order, and its unknown token (if it has one)."""
    n = tokenizer.get_vocab_size(with_added_tokens=True)
    if n < 1:
        raise VocabError("the tokenizer has an empty vocabulary")
    tokens = []
    for i in range(n):
        piece = tokenizer.id_to_token(i)
        if not piece:
            raise VocabError(f"the tokenizer has no token for id {i}: its ids must run 0..{n - 1} without gaps")
        tokens.append(piece)
    unk = None
    model_unk = getattr(tokenizer.model, "unk_token", None)
    if isinstance(model_unk, str) and model_unk in tokens:
        unk = model_unk
    return tuple(tokens), unk


def _byte_letters() -> dict[str, int]:
    """A byte-level tokenizer's stand-in letter -> the byte it writes (GPT-2's table: the
    printable Latin-1 bytes stand for themselves, the rest are the letters from U+0100 on)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {chr(b): b for b in kept}, 0
    for b in range(256):
        if b not in kept:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def _is_byte_level(spec: dict) -> bool:
    def has(node) -> bool:
        if isinstance(node, dict):
            return node.get("type") == "ByteLevel" or any(has(v) for v in node.values())
        return isinstance(node, list) and any(has(v) for v in node)

    return has(spec.get("decoder")) or has(spec.get("pre_tokenizer"))


def _bytes_as_text(piece: str, letters: dict[str, int]) -> str | None:
    """One byte-level piece as people read it, or None when it is not written in bytes."""
    try:
        raw = bytes(letters[c] for c in piece)
    except KeyError:
        return None
    text = raw.decode("utf-8", errors="surrogateescape")
    # A byte that is part of a character split over pieces: <0xC3>, as SentencePiece writes it.
    text = "".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)
    return text.replace(" ", "▁")  # the space before a word, as the other subword pieces show it


def shown_pieces(text: str, tokens: tuple[str, ...]) -> tuple[str, ...]:
    """`tokens` (the pieces of the tokenizer whose JSON is `text`) as people read them: the same
    pieces, unless the tokenizer is byte-level, where each piece's bytes are decoded ("Ġthe" ->
    "▁the", "Ċ" -> a line break, "Ã©" -> "é", a lone byte -> "<0xC3>"). Added and special tokens
    stay as written; so does any piece whose reading would be another piece's."""
    import json

    spec = json.loads(text)
    if not isinstance(spec, dict) or not _is_byte_level(spec):
        return tokens
    added = {t.get("content") for t in spec.get("added_tokens") or () if isinstance(t, dict)}
    letters = _byte_letters()
    shown = [t if t in added else (_bytes_as_text(t, letters) or t) for t in tokens]
    counts: dict[str, int] = {}
    for t in shown:
        counts[t] = counts.get(t, 0) + 1
    shown = [s if counts[s] == 1 else t for s, t in zip(shown, tokens)]
    return tuple(shown) if len(set(shown)) == len(shown) else tokens


def train_bpe(texts: Iterable[str], vocab_size: int = DEFAULT_BPE_VOCAB) -> str:
    """A BPE tokenizer trained on `texts` (an iterable of strings, read once), as its JSON."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < MIN_BPE_VOCAB:
        raise ConfigError(f"the BPE vocabulary size must be a whole number >= {MIN_BPE_VOCAB}, got {vocab_size!r}")
    tk = require_tokenizers()
    tokenizer = tk.Tokenizer(tk.models.BPE(unk_token=UNK))
    # A space becomes "▁" at the start of the next piece (SentencePiece's mark) and a line break
    # is a piece of its own. A text's first word gets a "▁" too (the decoder drops it again), so
    # "the dog" typed in the stepper reads "▁the" as the word is read mid-sentence.
    # A run of more than MAX_PIECE characters without a space (a long CJK line, minified data)
    # is cut into pieces of that length: BPE training is superlinear in a pre-token's length.
    tokenizer.pre_tokenizer = tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Split("\n", behavior="isolated"),
        tk.pre_tokenizers.Metaspace(prepend_scheme="first"),
        tk.pre_tokenizers.Split(tk.Regex(f"[^\\n]{{1,{MAX_PIECE}}}"), behavior="isolated"),
    ])
    tokenizer.decoder = tk.decoders.Metaspace(prepend_scheme="first")
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[UNK], show_progress=False)
    seen = [False]

    def each():
        for text in texts:
            if text:
                seen[0] = True
                yield text

    tokenizer.train_from_iterator(each(), trainer)
    if not seen[0]:
        raise CorpusError("cannot train a BPE vocabulary on empty text")
    return tokenizer.to_str()


def read_tokenizer_file(path: str | os.PathLike) -> str:
    """The JSON of a user's tokenizer.json, checked: a regular file of at most
    MAX_TOKENIZER_BYTES, UTF-8, that ``tokenizers`` parses. ConfigError says what is wrong."""
    raw = read_user_file(path, MAX_TOKENIZER_BYTES, "tokenizer")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a tokenizer.json (not UTF-8 text)") from None
    try:
        tokenizer_from_json(text)
    except VocabError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return text


def read_user_file(path: str | os.PathLike, limit: int, noun: str) -> bytes:
    """The bytes of a small file the user names (a tokenizer, a vocabulary): a regular file of
    at most `limit` bytes, or a ConfigError that says what is wrong with it."""
    from ...runs.files import TooLarge, UnsafePath, read_bounded

    try:
        return read_bounded(path, limit)
    except FileNotFoundError:
        raise ConfigError(f"no such {noun} file: {path}") from None
    except TooLarge:
        raise ConfigError(f"{path} is larger than {limit >> 20:,} MiB: not a {noun} file") from None
    except UnsafePath as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def tokenizer_json(tokenizer) -> str:
    """The JSON of what a caller gives as a tokenizer: a ``tokenizers.Tokenizer``, a path to a
    tokenizer.json, or that JSON text itself."""
    if hasattr(tokenizer, "to_str") and callable(tokenizer.to_str):
        return tokenizer.to_str()
    if isinstance(tokenizer, os.PathLike) or (isinstance(tokenizer, str) and not tokenizer.lstrip().startswith("{")):
        return read_tokenizer_file(tokenizer)
    if isinstance(tokenizer, str):
        tokenizer_from_json(tokenizer)
        return tokenizer
    raise ConfigError(f"a tokenizer is a tokenizers.Tokenizer, a tokenizer.json path or its JSON text, "
                      f"not {type(tokenizer).__name__}")
