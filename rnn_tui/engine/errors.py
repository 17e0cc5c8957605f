"""Errors the engine raises on bad input.

Every one carries a message written for a person: the command line prints it as one line,
the TUI shows it in a notification. Nothing else should reach a user.
"""

from __future__ import annotations


class RnnTuiError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(RnnTuiError, ValueError):
    """An unknown cell, init scheme, optimizer, or an out-of-range setting."""


class CorpusError(RnnTuiError):
    """A corpus that cannot be read or is unusable (empty, binary, too short)."""


class VocabError(RnnTuiError):
    """Text that cannot be encoded with a model's vocabulary."""


class CheckpointError(RnnTuiError):
    """A checkpoint that is missing, truncated, corrupt or does not match its config."""


class ProbeLimitError(RnnTuiError):
    """A probe asked to work on more than it can in bounded time and memory."""


class DeviceError(RnnTuiError):
    """A device that is not available, or ran out of memory."""


class TrainingStopped(RnnTuiError):
    """Training stopped on its own (diverged, out of memory); the message says why."""
