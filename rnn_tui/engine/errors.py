"""Errors the engine raises on bad input.

Every one carries a message written for a person: the command line prints it as one line,
the TUI shows it in a notification. Nothing else should reach a user.

A message is one line of bounded length whatever it quotes (a 10 MB vocabulary token, a path
with a newline in it): :class:`RnnTuiError` folds line breaks and cuts it at
``MAX_MESSAGE`` characters, and :func:`quote` is how a message quotes a value it was given.
"""

from __future__ import annotations

MAX_MESSAGE = 1000  # characters of an error message
MAX_QUOTE = 60  # characters of a value a message quotes


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line (line breaks become spaces), cut to at most `limit` characters."""
    text = " ".join(str(text).splitlines()) if ("\n" in text or "\r" in text) else str(text)
    if len(text) > limit:
        cut = len(text) - limit
        text = f"{text[:limit]}… ({cut:,} more characters)"
    return text


def quote(value, limit: int = MAX_QUOTE, repr_: bool = True) -> str:
    """How a message quotes a value it was given: its repr (or str), cut to `limit` characters."""
    if isinstance(value, str) and len(value) > limit:
        shown = repr(value[:limit]) if repr_ else value[:limit]
        return f"{shown}… ({len(value):,} characters)"
    text = repr(value) if repr_ else str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


class RnnTuiError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    def __init__(self, *args) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (one_line(args[0]),)
        super().__init__(*args)


class ConfigError(RnnTuiError, ValueError):
    """An unknown cell, init scheme, optimizer, or an out-of-range setting."""


class CorpusError(RnnTuiError):
    """A corpus that cannot be read or is unusable (empty, binary, too short)."""


class VocabError(RnnTuiError):
    """Text that cannot be encoded with a model's vocabulary."""


class CheckpointError(RnnTuiError):
    """A checkpoint that is missing, truncated, corrupt or does not match its config."""


class ProbeLimitError(RnnTuiError):
    """A probe asked to work on more than it can in bounded time and memory.

    ``fit``: how many of the last tokens would fit (None when no window helps): the command
    line offers ``--window fit``, the TUI the last ``fit`` tokens of the sentence."""

    def __init__(self, message: str, fit: int | None = None) -> None:
        super().__init__(message)
        self.fit = fit


class DeviceError(RnnTuiError):
    """A device that is not available, or ran out of memory."""


class TrainingStopped(RnnTuiError):
    """Training stopped on its own (diverged, out of memory); the message says why."""
