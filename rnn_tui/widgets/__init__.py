"""Reusable Rich renderables (heatmaps, bars, colour maps) and chart helpers.

Everything here is Rich + numpy except ``LivePlot`` in ``plots``, a thin Textual widget.
"""

from .bars import ConfidenceBars, ProbBars, bar, nats, pct
from .colors import (
    NAN_RGB,
    SCALES,
    auto_limits,
    bg_style,
    color,
    diverging,
    legend,
    log_color,
    normalize,
    rgb,
    sequential,
)
from .heatmap import Heatmap, TriangleHeatmap, heat_row, token_label, unit_order
from .plots import LivePlot, SeriesStore, downsample, ema, log_safe, log_ticks, plot_width_points

__all__ = [
    "NAN_RGB",
    "SCALES",
    "ConfidenceBars",
    "Heatmap",
    "LivePlot",
    "ProbBars",
    "SeriesStore",
    "TriangleHeatmap",
    "auto_limits",
    "bar",
    "bg_style",
    "color",
    "diverging",
    "downsample",
    "ema",
    "heat_row",
    "legend",
    "log_color",
    "log_safe",
    "log_ticks",
    "nats",
    "normalize",
    "pct",
    "plot_width_points",
    "rgb",
    "sequential",
    "token_label",
    "unit_order",
]
