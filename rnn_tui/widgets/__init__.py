"""Textual widgets shared by the screens: the one chart widget, a renderable panel, the tab bar.

Rich renderables (heatmaps, bars, colour maps) and number formatting live in `rnn_tui.render`.
"""

from .chart import Chart
from .modebar import ModeBar
from .panel import Panel

__all__ = ["Chart", "ModeBar", "Panel"]
