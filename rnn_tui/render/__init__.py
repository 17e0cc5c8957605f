"""Rich renderables and formatting: heatmaps, bars, the colour table, ticks, numbers, series.

Nothing here is a Textual widget (those are in `rnn_tui.widgets`): these are plain Rich + numpy,
testable by rendering to a recording console.
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
from .series import downsample, ema, log_safe, plot_width_points
from .ticks import log_ticks, nice_ticks

__all__ = [
    "NAN_RGB", "SCALES", "ConfidenceBars", "Heatmap", "ProbBars", "TriangleHeatmap", "auto_limits",
    "bar", "bg_style", "color", "diverging", "downsample", "ema", "heat_row", "legend", "log_color",
    "log_safe", "log_ticks", "nats", "nice_ticks", "normalize", "pct", "plot_width_points", "rgb",
    "sequential", "token_label", "unit_order",
]
