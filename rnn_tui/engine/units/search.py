"""Unit search: the units that stay on across a span of a sentence (`select_units`), and every
place in a corpus where they are all on together for as long (`find_matches`), ranked as
LSTMVis ranks them, with a decoded snippet around each.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..probes import ProbeResult, to_jsonable
from .states import VALUE_ALIASES, CorpusStates, check_whole

# Up to this many runs, covering most of the stretch they span, find_matches reduces over the
# corpus in place rather than gathering the runs' positions.
_FEW_RUNS = 2048


def trace_values(tr, value: str = "hidden", layer: int | None = None) -> np.ndarray:
    """[T, H] of `value` for one layer out of a probes.Trace, to feed select_units.

    layer: a model layer the trace holds; None (or a negative index into the layers it holds)
    picks among `tr.layers`, None meaning the last of them.
    """
    name = VALUE_ALIASES.get(value, value)
    if layer is None:
        layer = -1
    if layer < 0:
        if -layer > len(tr.layers):
            raise ConfigError(f"the trace holds {len(tr.layers)} layer(s), not index {layer}")
        layer = tr.layers[layer]
    if layer not in tr.layers:
        raise ConfigError(f"the trace holds layers {tr.layers}, not layer {layer}")
    k = tr.layers.index(layer)
    if name == "hidden":
        return tr.hidden[k]
    key = "c" if name == "cell" else name
    if key not in tr.gates:
        raise ConfigError(f"the trace has no {value!r}: it holds hidden, {', '.join(tr.gates) or 'no gates'}")
    return tr.gates[key][k]


# ------------------------------------------------------------------------ unit selection
def _check_span(span, T: int) -> tuple[int, int]:
    try:
        start, end = (int(s) for s in span)
    except (TypeError, ValueError):
        raise ConfigError(f"span must be (start, end) token positions, got {span!r}") from None
    if not 0 <= start < end <= T:
        raise ConfigError(f"span ({start}, {end}) must satisfy 0 <= start < end <= {T} "
                          "(end is exclusive)")
    return start, end


def select_units(values: np.ndarray, span, threshold: float, off_outside: bool = False) -> np.ndarray:
    """Units >= threshold at every step of span = (start, end) (end exclusive), as sorted ints.

    With off_outside, a unit must also be below the threshold at the step just before and just
    after the span, where those steps exist (LSTMVis's "off" around a selection).
    """
    v = np.asarray(values)
    if v.ndim != 2:
        raise ConfigError(f"values must be [T, H], got shape {v.shape}")
    start, end = _check_span(span, v.shape[0])
    thr = float(threshold)
    on = np.all(v[start:end] >= thr, axis=0)
    if off_outside:
        if start > 0:
            on &= v[start - 1] < thr
        if end < v.shape[0]:
            on &= v[end] < thr
    return np.flatnonzero(on).astype(np.int64)


# ---------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class Match:
    start: int  # first corpus position of the run
    end: int  # one past its last position
    score: int  # selected units on (all of them) minus other units on throughout the run
    extra: int  # other units on throughout the run
    mean: float  # mean value of the selected units over the run
    snippet: str  # decoded text around the run (newlines shown as ⏎)
    mark_start: int  # the run's characters in `snippet`
    mark_end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, eq=False)
class UnitMatches(ProbeResult):
    """Runs of the corpus where all the selected units are on, best first."""

    units: np.ndarray  # int64 [k]
    threshold: float
    span_len: int
    off_outside: bool
    value: str
    layer: int
    total: int  # runs that qualified, before keeping the top ones
    matches: tuple[Match, ...]
    seconds: float

    def to_json(self) -> dict:
        data = super().to_json()
        data["matches"] = [to_jsonable(m.__dict__) for m in self.matches]
        return data


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the maximal runs of True in a bool vector."""
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _gather_runs(cols: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cols [H, N] restricted to the runs' positions, [H, sum of lengths], and each run's offset."""
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    idx = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    return cols.take(idx, axis=1), offsets


def _unit_sums(states: CorpusStates, block: np.ndarray, units: np.ndarray) -> np.ndarray:
    """float64 [n]: the sum of the selected units' values at each position of block [H, n]."""
    n = block.shape[1]
    if states.storage != "uint8":
        acc = np.zeros(n, dtype=np.float64)
        for u in units:
            acc += block[u]
        return acc
    lo, step = states.lo[units], states.step[units]
    if np.all(step == step[0]):
        # One grid for all (every fixed-range value): add the codes as integers, scale once.
        acc = np.zeros(n, dtype=np.int32)
        for u in units:
            np.add(acc, block[u], out=acc)
        return float(lo.sum()) + float(step[0]) * acc
    acc, tmp = np.zeros(n, dtype=np.float64), np.empty(n, dtype=np.float64)
    for u, s in zip(units, step):
        np.multiply(block[u], float(s), out=tmp)
        acc += tmp
    return acc + float(lo.sum())


def find_matches(states: CorpusStates, units, threshold: float, span_len: int,
                 off_outside: bool = False, top: int = 20, context: int = 30) -> UnitMatches:
    """Where else in the corpus the selected units are all >= threshold together.

    A candidate is a maximal run of positions where every selected unit is on, at least
    span_len long (with off_outside, every selected unit must be off just before and after
    it). Ranked LSTMVis-style by score = selected units on minus other units on throughout
    the run, then by how close the run's length is to span_len, then by the mean value of
    the selected units. Vectorised: one pass over the k selected columns, one segmented
    minimum over the runs for the others.
    """
    t0 = time.perf_counter()
    H = states.hidden_size
    units = np.unique(np.asarray(units, dtype=np.int64).reshape(-1))
    if units.size == 0:
        raise ConfigError("no units selected: lower the threshold or pick a shorter span")
    if units[0] < 0 or units[-1] >= H:
        raise ConfigError(f"unit numbers must be in 0..{H - 1}, got {units.tolist()}")
    span_len = check_whole(span_len, "span_len", 1)
    top = check_whole(top, "top", 1)
    thr = float(threshold)
    if not math.isfinite(thr):
        raise ConfigError(f"threshold must be a finite number, got {threshold!r}")
    codes, never = states.codes(thr)

    def result(starts, ends, score, extra, mean, total):
        out = []
        for s, e, sc, ex, mu in zip(starts.tolist(), ends.tolist(), score.tolist(), extra.tolist(),
                                    mean.tolist()):
            text, m0, m1 = states.snippet(s, e, context)
            out.append(Match(s, e, int(sc), int(ex), float(mu), text, m0, m1))
        return UnitMatches(units=units, threshold=thr, span_len=span_len, off_outside=bool(off_outside),
                           value=states.value, layer=states.layer, total=int(total),
                           matches=tuple(out), seconds=time.perf_counter() - t0)

    empty = np.zeros(0, dtype=np.int64)
    if never[units].any():
        return result(empty, empty, empty, empty, np.zeros(0), 0)
    cols = states.data.T  # [H, N], C order: one unit's row is contiguous
    # k passes of N bytes each; no [k, N] copy.
    on_all = cols[units[0]] >= codes[units[0]]
    for u in units[1:]:
        on_all &= cols[u] >= codes[u]
    if not states.complete:
        on_all &= states.covered()
    starts, ends = _runs(on_all)
    ok = ends - starts >= span_len
    starts, ends = starts[ok], ends[ok]
    if off_outside and len(starts):
        # Every selected unit below the threshold at the step before and the step after.
        ok = np.ones(len(starts), dtype=bool)
        has_b, has_a = starts > 0, ends < states.n_tokens
        for u in units:
            ok[has_b] &= cols[u, starts[has_b] - 1] < codes[u]
            ok[has_a] &= cols[u, ends[has_a]] < codes[u]
        starts, ends = starts[ok], ends[ok]
    total = len(starts)
    if total == 0:
        return result(empty, empty, empty, empty, np.zeros(0), 0)
    lengths = ends - starts
    if total <= _FEW_RUNS and 4 * int(lengths.sum()) >= int(ends[-1] - starts[0]):
        # Few runs covering most of their stretch: reduce in place; a copy costs more than the gaps.
        idx = np.empty(2 * total, dtype=np.int64)
        idx[0::2], idx[1::2] = starts, ends
        if idx[-1] == states.n_tokens:  # reduceat's last segment already runs to the end
            idx = idx[:-1]
        mins = np.minimum.reduceat(cols, idx, axis=1)[:, 0::2]
        a, b = int(starts[0]), int(ends[-1])
        local = np.empty(2 * total - 1, dtype=np.int64)  # the last run ends the block
        local[0::2], local[1::2] = starts - a, ends[:-1] - a
        sums = np.add.reduceat(_unit_sums(states, cols[:, a:b], units), local)[0::2]
    else:
        # Many runs: gather their positions once, then segment-reduce the compact copy.
        sub, offsets = _gather_runs(cols, starts, ends)
        mins = np.minimum.reduceat(sub, offsets, axis=1)
        sums = np.add.reduceat(_unit_sums(states, sub, units), offsets)
    # Other units on throughout a run: their minimum over it is still on.
    others = np.setdiff1d(np.arange(H), units)
    others = others[~never[others]]
    extra = np.count_nonzero(mins[others] >= codes[others][:, None], axis=0)
    score = len(units) - extra
    mean = sums / (lengths * len(units))
    order = np.lexsort((starts, -mean, np.abs(lengths - span_len), -score))[:top]
    return result(starts[order], ends[order], score[order], extra[order], mean[order], total)
