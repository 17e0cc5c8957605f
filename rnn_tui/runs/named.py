"""Named series: the metrics of a run that have no column of their own (``COLUMNS``).

A metrics.jsonl line may hold any scalar (``RunWriter.log(step, accuracy=0.9)``), and a
TensorBoard log any number of tags. Every numeric value the charts have no column for is kept
under its name as a series of points (``NAMED_COLUMNS``: step, training time, wall clock,
value), so the training screen can chart it by name.

What a run's files say is not trusted to be small: a run keeps at most ``MAX_NAMED`` names (the
first ones seen; the others are only counted, up to ``MAX_COUNTED``), a name is cut to
``MAX_NAME_CHARS`` characters with its control characters taken out, and one record gives at
most ``MAX_NAMED`` points. Plain Python and numpy, as the rest of ``runs/``.
"""

from __future__ import annotations

from array import array

import numpy as np

NAMED_COLUMNS = ("step", "time", "wall", "value")  # one point of a named series
N_NAMED = len(NAMED_COLUMNS)
MAX_NAMED = 32  # names a run keeps
MAX_NAME_CHARS = 48  # a longer name is cut (and ends in "…")
MAX_COUNTED = 10_000  # names left out are counted up to here ("10000+")


def clean_name(name: object) -> str:
    """A metric name fit to show: a string without control characters, at most MAX_NAME_CHARS
    long ('' for a name that is not a string or has nothing left)."""
    if not isinstance(name, str):
        return ""
    if len(name) > 4 * MAX_NAME_CHARS:  # a hostile key: look at no more of it than needed
        name = name[: 4 * MAX_NAME_CHARS]
    text = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(text) > MAX_NAME_CHARS:
        text = text[: MAX_NAME_CHARS - 1] + "…"
    return text


class NameTable:
    """Which names a run keeps: the first MAX_NAMED, in the order they came."""

    def __init__(self, limit: int = MAX_NAMED) -> None:
        self.limit = limit
        self.names: list[str] = []
        self._kept: dict[str, str] = {}  # raw name -> the name kept
        self._left_out: set[str] = set()  # the (cut) names not kept

    @property
    def left_out(self) -> int:
        """How many other names were seen and not kept (counted up to MAX_COUNTED)."""
        return len(self._left_out)

    def admit(self, raw: object) -> str | None:
        """The name to keep `raw`'s points under, or None when it is not kept."""
        if not isinstance(raw, str):
            return None
        kept = self._kept.get(raw)
        if kept is not None:
            return kept
        name = clean_name(raw)
        if not name:
            return None
        if name not in self.names:  # (two raw names cut to the same text make one series)
            if len(self.names) >= self.limit:
                if len(self._left_out) < MAX_COUNTED:
                    self._left_out.add(name)
                return None
            self.names.append(name)
        if len(self._kept) < 8 * self.limit:  # a cache, bounded whatever the file holds
            self._kept[raw] = name
        return name

    def clear(self) -> None:
        self.names.clear()
        self._kept.clear()
        self._left_out.clear()


class NamedBuffer:
    """Points of named series waiting to be taken: name -> flat (step, time, wall, value)."""

    def __init__(self) -> None:
        self._data: dict[str, array] = {}

    def __bool__(self) -> bool:
        return bool(self._data)

    def add(self, name: str, step: float, time: float, wall: float, value: float) -> None:
        buf = self._data.get(name)
        if buf is None:
            buf = self._data[name] = array("d")
        buf.extend((step, time, wall, value))

    def merge(self, other: "NamedBuffer") -> None:
        for name, buf in other._data.items():
            mine = self._data.get(name)
            if mine is None:
                self._data[name] = buf
            else:
                mine.extend(buf)

    def drop_from(self, step: float) -> None:
        """Drop the points at `step` and later (a TensorBoard restart purges them)."""
        for name, buf in list(self._data.items()):
            points = np.frombuffer(buf, dtype=np.float64).reshape(-1, N_NAMED)
            keep = points[points[:, 0] < step]
            if len(keep) < len(points):
                self._data[name] = array("d")
                self._data[name].frombytes(keep.tobytes())

    def arrays(self) -> dict[str, np.ndarray]:
        """Each name's points as a read-only (n, 4) array in NAMED_COLUMNS order."""
        out = {}
        for name, buf in self._data.items():
            a = np.frombuffer(buf, dtype=np.float64).reshape(-1, N_NAMED).copy()
            a.flags.writeable = False
            out[name] = a
        return out
