"""Vocabularies: a text cut into character or word tokens and mapped to ids, with a policy
for tokens the vocabulary lacks (error, skip, or map to <unk>) and a message naming them."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import ConfigError, CorpusError, VocabError, quote

LEVELS = ("char", "word")
ON_UNKNOWN = ("error", "skip", "unk")
UNK = "<unk>"

# Word level keeps punctuation as tokens of its own so "dog." and "dog" share an id.
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_WORD_SPAN_RE = re.compile(r"\w+")
# How many unknown tokens a message names before it only counts the rest.
_SHOW_UNKNOWN = 8


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"unknown tokenisation level {quote(level)}: choose 'char' or 'word'")
    return level


def _noun(level: str, count: int) -> str:
    word = "character" if level == "char" else "word"
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
            raise VocabError(f"vocabulary has duplicate tokens: {', '.join(map(quote, dupes[:8]))}")
        if self.unk is not None and self.unk not in self.tokens:
            raise VocabError(f"the unknown token {quote(self.unk)} is not in the vocabulary")
        if self.level == "char":
            bad = [t for t in self.tokens if len(t) != 1 and t != self.unk]
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
        starts = [m.start() for m in _WORD_RE.finditer(text) if m.group() in self.stoi]
        return text[starts[-n]:] if len(starts) >= n else text

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
