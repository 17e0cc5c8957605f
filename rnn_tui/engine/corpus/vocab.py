"""Vocabularies: a text cut into character, word or subword (BPE) tokens and mapped to ids,
with a policy for tokens the vocabulary lacks (error, skip, or map to <unk>) and a message
naming them. A subword vocabulary is a Hugging Face tokenizer's (see `subword`)."""

from __future__ import annotations

import os

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import ConfigError, CorpusError, VocabError, quote

LEVELS = ("char", "word", "bpe")
ON_UNKNOWN = ("error", "skip", "unk")
# A character vocabulary may hold special tokens besides its characters (<pad>, <eos>, [SEP]):
# no text encodes to them, a model may still predict them.
_SPECIAL = re.compile(r"<[^<>\s]{1,16}>|\[[A-Z_]{1,16}\]")
UNK = "<unk>"

# Word level keeps punctuation as tokens of its own so "dog." and "dog" share an id.
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_WORD_SPAN_RE = re.compile(r"\w+")
# How many unknown tokens a message names before it only counts the rest.
_SHOW_UNKNOWN = 8


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"unknown tokenisation level {quote(level)}: choose 'char', 'word' or 'bpe'")
    return level


def _noun(level: str, count: int) -> str:
    word = "word" if level == "word" else "character"  # what BPE cannot read is characters
    return word if count == 1 else word + "s"


def _unknown_phrase(level: str, unknown: Sequence[str]) -> str:
    """'2 characters not in the model's vocabulary ('Q', '!')', naming at most a few."""
    shown = ", ".join(quote(t) for t in unknown[:_SHOW_UNKNOWN])
    if len(unknown) > _SHOW_UNKNOWN:
        shown += f", ... and {len(unknown) - _SHOW_UNKNOWN} more"
    return f"{len(unknown)} {_noun(level, len(unknown))} not in the model's vocabulary ({shown})"



@dataclass(frozen=True, eq=False)
class Encoded:
    """The result of encoding a text: ids plus what happened to tokens the vocab lacks.

    ``tokens[i]`` is always the vocabulary token of ``ids[i]`` as it is shown (`Vocab.shown`),
    so an unknown mapped to ``<unk>`` shows as ``<unk>``; ``unknown`` lists the distinct unknown
    tokens in order of first appearance.
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
    # level "bpe": the tokenizer's JSON (tokenizer.json), whose pieces `tokens` are, in id order.
    tokenizer: str | None = field(default=None, repr=False)

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
            raise VocabError(f"vocabulary has duplicate tokens: {', '.join(map(quote, dupes[:8]))}")
        if self.unk is not None and self.unk not in self.tokens:
            raise VocabError(f"the unknown token {quote(self.unk)} is not in the vocabulary")
        if (self.level == "bpe") != (self.tokenizer is not None):
            raise VocabError("a subword (bpe) vocabulary needs its tokenizer, and only it has one")
        if self.level == "bpe":
            from .subword import pieces_of

            pieces, _ = pieces_of(self._tok)
            if pieces != self.tokens:
                raise VocabError("the vocabulary's tokens are not its tokenizer's pieces in id order")
        if self.level == "char":
            bad = [t for t in self.tokens if len(t) != 1 and t != self.unk and not _SPECIAL.fullmatch(t)]
            if bad:
                raise VocabError("a character vocabulary has multi-character tokens: "
                                 f"{', '.join(map(quote, bad[:8]))}")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    @cached_property
    def reads_lowercase_only(self) -> bool:
        """A character vocabulary with no capital letter: 'Hello' is best read as 'hello'
        (rather than 'ello'). The one rule the screens and the corpus encoder share."""
        return self.level == "char" and not any(t != t.lower() for t in self.tokens)

    @property
    def _tok(self):
        """The ``tokenizers.Tokenizer`` of a bpe vocabulary (parsed once per JSON text)."""
        from .subword import tokenizer_from_json

        return tokenizer_from_json(self.tokenizer)

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "Vocab":
        """A bpe vocabulary from a ``tokenizers.Tokenizer``, a tokenizer.json path or its JSON."""
        from .subword import pieces_of, tokenizer_from_json, tokenizer_json

        text = tokenizer_json(tokenizer)
        tokens, unk = pieces_of(tokenizer_from_json(text))
        return cls(tokens=tokens, level="bpe", unk=unk, tokenizer=text)

    @cached_property
    def stoi(self) -> dict[str, int]:
        """token -> id."""
        return {t: i for i, t in enumerate(self.tokens)}

    @cached_property
    def shown(self) -> tuple[str, ...]:
        """The tokens as people read them, in id order: `tokens`, except that a byte-level BPE
        tokenizer's pieces (GPT-2's "Ġthe", "Ċ") read as text ("▁the", a line break)."""
        if self.level != "bpe":
            return self.tokens
        from .subword import shown_pieces

        return shown_pieces(self.tokenizer, self.tokens)

    def id_of(self, token: str) -> int | None:
        """The id of a token written as the tokenizer writes it or as it is shown."""
        found = self.stoi.get(token)
        return self._shown_ids.get(token) if found is None and self.shown is not self.tokens else found

    @cached_property
    def _shown_ids(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.shown)}

    @cached_property
    def _token_array(self) -> np.ndarray:
        # An object array lets Encoded.tokens (and decode, below bpe) index many ids at C speed.
        # It holds the tokens as shown: Encoded.tokens are what a screen prints.
        arr = np.empty(len(self.tokens), dtype=object)
        arr[:] = self.shown
        return arr

    @cached_property
    def _char_table(self) -> tuple[np.ndarray, np.ndarray]:
        # Sorted code points and their ids: searchsorted then maps a whole text at once.
        pairs = sorted((ord(t), i) for i, t in enumerate(self.tokens) if len(t) == 1)
        codes = np.array([c for c, _ in pairs], dtype=np.uint32)
        ids = np.array([i for _, i in pairs], dtype=np.int64)
        return codes, ids

    def split(self, text: str) -> list[str]:
        if self.level == "bpe":
            return list(self._tok.encode(text, add_special_tokens=False).tokens)
        return list(text) if self.level == "char" else _WORD_RE.findall(text)

    def _bpe_lookup(self, text: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """BPE: the tokenizer's ids, -1 where it fell back to <unk> (the characters it lacks)."""
        enc = self._tok.encode(text, add_special_tokens=False)
        ids = np.asarray(enc.ids, dtype=np.int64)
        unk_id = self.stoi.get(self.unk) if self.unk is not None else None
        if unk_id is None or not (ids == unk_id).any():
            return ids, ()
        bad = np.flatnonzero(ids == unk_id)
        offsets = enc.offsets  # (a new list of every piece's offsets on each access: read it once)
        unknown = tuple(dict.fromkeys(text[a:b] or self.unk for a, b in (offsets[i] for i in bad)))
        ids[bad] = -1
        return ids, unknown

    def _lookup(self, text: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """ids with -1 where unknown, and the distinct unknown tokens in order of appearance."""
        if self.level == "bpe":
            return self._bpe_lookup(text)
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
        if self.level == "bpe":
            return self._tok.decode(arr.tolist(), skip_special_tokens=False)
        sep = "" if self.level == "char" else " "
        return sep.join(self._token_array[arr])

    def piece_text(self, ids: Sequence[int], new: int) -> str:
        """The text token `new` adds after `ids` (what a sampler prints): the token itself for
        characters, " word" for words, and for BPE what the tokenizer's decoder makes of it in
        that context (a "▁" piece starts a word with a space)."""
        if self.level != "bpe":
            return self.tokens[new] if self.level == "char" else " " + self.tokens[new]
        context = list(ids[-8:])
        # A character split over pieces (byte-level BPE) decodes to "\ufffd" until its last
        # byte comes: held back until then. A decoder that rewrites earlier text (cleanup)
        # gives only what follows the part both decodings share.
        before = self._tok.decode(context, skip_special_tokens=False).rstrip("\ufffd") if context else ""
        after = self._tok.decode(context + [int(new)], skip_special_tokens=False).rstrip("\ufffd")
        if after.startswith(before):
            return after[len(before):]
        return after[len(os.path.commonprefix([before, after])):]

    def tail(self, text: str, n: int) -> str:
        """The end of `text` that holds its last `n` tokens this vocabulary reads (those encoding
        with on_unknown="skip" keeps): what a window of `n` tokens reads of it."""
        if n < 1:
            return ""
        if self.level == "char":
            stoi, seen = self.stoi, 0
            for i in range(len(text) - 1, -1, -1):
                if text[i] in stoi:
                    seen += 1
                    if seen == n:
                        return text[i:]
            return text
        if self.level == "bpe":
            enc = self._tok.encode(text, add_special_tokens=False)
            unk_id = self.stoi.get(self.unk) if self.unk is not None else None
            starts = [a for (a, _), i in zip(enc.offsets, enc.ids) if i != unk_id]
        else:
            starts = [m.start() for m in _WORD_RE.finditer(text) if m.group() in self.stoi]
        return text[starts[-n]:] if len(starts) >= n else text

    def to_dict(self) -> dict:
        data = {"level": self.level, "tokens": list(self.tokens), "unk": self.unk}
        if self.tokenizer is not None:
            data["tokenizer"] = self.tokenizer
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "Vocab":
        if not isinstance(data, Mapping) or not isinstance(data.get("tokens"), (list, tuple)):
            raise VocabError("bad vocabulary data: expected a mapping with a 'tokens' list")
        tokenizer = data.get("tokenizer")
        if tokenizer is not None and not isinstance(tokenizer, str):
            raise VocabError("bad vocabulary data: its 'tokenizer' is not a tokenizer.json text")
        return cls(tokens=tuple(data["tokens"]), level=data.get("level", "char"), unk=data.get("unk"),
                   tokenizer=tokenizer)

    @classmethod
    def build(cls, text: str, level: str, max_words: int = 20000, bpe_vocab: int | None = None) -> "Vocab":
        """Char: every character of the text, sorted. Word: the most frequent words plus <unk>.
        BPE: a tokenizer trained on the text, of at most `bpe_vocab` pieces."""
        _check_level(level)
        if not text:
            raise CorpusError("cannot build a vocabulary from empty text")
        if level == "bpe":
            from .subword import DEFAULT_BPE_VOCAB, train_bpe

            return cls.from_tokenizer(train_bpe([text], bpe_vocab or DEFAULT_BPE_VOCAB))
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
