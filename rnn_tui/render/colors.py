"""Colour maps for activations, probabilities and gradient magnitudes.

Everything is computed in numpy (so a whole heatmap is coloured in one call) and
handed to Rich as truecolor. Three scales:

* ``"diverging"``: values in [vmin, vmax] (default [-1, 1]) -> blue .. near-black .. red.
  Zero is near-black so an idle unit disappears into a dark terminal background.
* ``"sequential"``: values in [vmin, vmax] (default [0, 1]) -> dark purple .. orange .. yellow.
* ``"log"``: positive magnitudes (gradient norms) coloured by log10 on the sequential ramp;
  zero (float32 underflow) gets the darkest colour, since it is "smaller than anything".

Values outside the range are clamped. NaN is always a mid grey that is on no ramp.
"""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.text import Text

SCALES = ("diverging", "sequential", "log")

# The one colour table: every screen draws a cell, a run or a marker in these colours.
MODEL_RGB = {
    "rnn": (250, 100, 100),  # red: the vanilla cell, whose gradient vanishes
    "lstm": (86, 156, 255),  # blue
    "gru": (96, 206, 120),  # green
}
CURRENT_RGB = (255, 215, 95)  # yellow: the model the app has loaded (or is training)
DX_RGB = (200, 200, 200)  # the input gradient next to the state gradient
CELL_STATE_RGB = (80, 220, 226)  # cyan: an LSTM's cell-state gradient, the "gradient highway"
MARK_RGB = (130, 130, 130)  # reference lines on a chart: the subject, the loss's position
UNDERFLOW_RGB = (255, 80, 80)  # exact zeros drawn at a floor
# One colour per run or series, in order; they read on dark and light backgrounds.
SERIES_RGB = (
    (86, 156, 255),  # blue
    (255, 145, 60),  # orange
    (96, 206, 120),  # green
    (232, 96, 210),  # magenta
    (240, 214, 70),  # yellow
    (80, 220, 226),  # cyan
    (250, 100, 100),  # red
    (180, 150, 255),  # violet
)
CANVAS_RGB = (30, 30, 36)  # the charts' background, for faint (mixed) colours


def mix(rgb: tuple[int, int, int], other: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    """``rgb`` moved a fraction ``t`` of the way to ``other``."""
    return tuple(int(round(a * (1 - t) + b * t)) for a, b in zip(rgb, other))  # type: ignore[return-value]

NAN_RGB = (110, 110, 110)
NEUTRAL_RGB = (28, 28, 34)
_BLUE = (56, 118, 255)
_RED = (240, 58, 48)
# Inferno-like stops: dark -> purple -> orange -> yellow, readable on dark backgrounds.
_SEQ_STOPS = np.array([0.0, 0.35, 0.7, 1.0])
_SEQ_RGB = np.array([(24, 18, 40), (122, 32, 112), (232, 98, 40), (252, 232, 64)], float)


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"unknown colour scale {scale!r}; expected one of {', '.join(SCALES)}")


def auto_limits(values, scale: str = "diverging", vmin=None, vmax=None) -> tuple[float, float]:
    """Fill in missing limits: ±1 for diverging, [0, 1] for sequential, data range for log."""
    _check_scale(scale)
    if scale == "diverging":
        lo, hi = -1.0, 1.0
    elif scale == "sequential":
        lo, hi = 0.0, 1.0
    else:
        v = np.asarray(values, dtype=float)
        pos = v[np.isfinite(v) & (v > 0)]
        lo, hi = (float(pos.min()), float(pos.max())) if pos.size else (1e-6, 1.0)
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    if scale == "log":
        lo = lo if lo > 0 else 1e-12
        hi = hi if hi > lo else lo * 10.0  # a flat map still needs a non-empty range
    elif hi <= lo:
        hi = lo + 1.0
    return lo, hi


def normalize(values, scale: str = "diverging", vmin=None, vmax=None) -> np.ndarray:
    """Map values onto the ramp: [-1, 1] for diverging, [0, 1] otherwise. NaN stays NaN."""
    v = np.asarray(values, dtype=float)
    lo, hi = auto_limits(v, scale, vmin, vmax)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "diverging":
            out = (v - lo) / (hi - lo) * 2.0 - 1.0
            return np.clip(out, -1.0, 1.0)
        if scale == "sequential":
            return np.clip((v - lo) / (hi - lo), 0.0, 1.0)
        logs = np.log10(np.where(v > 0, v, lo))  # <= 0 clamps to the bottom of the range
        out = (logs - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return np.where(np.isnan(v), np.nan, np.clip(out, 0.0, 1.0))


def rgb(values, scale: str = "diverging", vmin=None, vmax=None) -> np.ndarray:
    """Colour an array: returns uint8 ``[..., 3]``; NaN cells are NAN_RGB."""
    n = normalize(values, scale, vmin, vmax)
    nan = np.isnan(n)
    n = np.where(nan, 0.0, n)
    if scale == "diverging":
        # A mild gamma lifts small values off the black so weak activity is still visible.
        t = np.abs(n)[..., None] ** 0.8
        end = np.where((n < 0)[..., None], _BLUE, _RED)
        out = np.asarray(NEUTRAL_RGB, float) + t * (end - np.asarray(NEUTRAL_RGB, float))
    else:
        out = np.stack([np.interp(n, _SEQ_STOPS, _SEQ_RGB[:, c]) for c in range(3)], axis=-1)
    out[nan] = NAN_RGB
    return np.rint(out).astype(np.uint8)


def _color(triplet) -> Color:
    r, g, b = (int(c) for c in triplet)
    return Color.from_rgb(r, g, b)


def color(value: float, scale: str = "diverging", vmin=None, vmax=None) -> Color:
    """The truecolor Rich ``Color`` for one value."""
    return _color(rgb(np.array([value]), scale, vmin, vmax)[0])


def diverging(value: float) -> Color:
    """Blue (-1) .. near-black (0) .. red (+1); clamped; NaN grey."""
    return color(value, "diverging")


def sequential(value: float) -> Color:
    """Dark (0) .. yellow (1); clamped; NaN grey."""
    return color(value, "sequential")


def log_color(value: float, vmin: float, vmax: float) -> Color:
    """Magnitude on a log10 scale between vmin and vmax (both > 0)."""
    return color(value, "log", vmin, vmax)


def hex_code(triplet) -> str:
    r, g, b = (int(c) for c in triplet)
    return f"#{r:02x}{g:02x}{b:02x}"


def bg_style(value: float, scale: str = "diverging", vmin=None, vmax=None) -> str:
    """A Rich style string such as ``"on #3876ff"`` for a background-coloured cell."""
    return "on " + hex_code(rgb(np.array([value]), scale, vmin, vmax)[0])


def text_on(triplet) -> str:
    """Black or white, whichever reads on this background."""
    r, g, b = (int(c) for c in triplet)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def fmt_value(v: float) -> str:
    """Short label for a scale end: 1, -1, 0.5, 1e-06."""
    if v == 0:
        return "0"
    if abs(v) < 1e-2 or abs(v) >= 1e4:
        return f"{v:.0e}"
    return f"{v:.3g}"  # a derived midpoint such as 2.08567 reads as 2.09


def legend(kind: str = "diverging", width: int = 24, vmin=None, vmax=None) -> Text:
    """One line, exactly ``width`` cells: ``-1 [gradient with 0 in the middle] +1``."""
    _check_scale(kind)
    lo, hi = auto_limits([], kind, vmin, vmax)
    if kind == "log":
        mid = 10 ** ((math.log10(lo) + math.log10(hi)) / 2)
    else:
        mid = (lo + hi) / 2
    left, right = fmt_value(lo), fmt_value(hi)
    if kind == "diverging" and hi > 0:
        right = "+" + right
    mid_label = fmt_value(mid)
    bar_w = max(1, width - len(left) - len(right) - 2)
    # Sample the ramp at cell centres, in the scale's own coordinates.
    t = (np.arange(bar_w) + 0.5) / bar_w
    if kind == "log":
        samples = 10 ** (math.log10(lo) + t * (math.log10(hi) - math.log10(lo)))
    else:
        samples = lo + t * (hi - lo)
    colours = rgb(samples, kind, lo, hi)
    start = (bar_w - len(mid_label)) // 2 if len(mid_label) + 2 <= bar_w else -1
    text = Text(left + " ", no_wrap=True, overflow="crop")
    for i, c in enumerate(colours):
        ch = mid_label[i - start] if start >= 0 and start <= i < start + len(mid_label) else " "
        text.append(ch, style=f"{text_on(c)} on {hex_code(c)}")
    text.append(" " + right)
    text.truncate(width, pad=True)
    return text
