"""Mode 2, Training: train models live, follow runs another process trains, compare them.

* ``screen``: `TrainingScreen` (layout, keys, the training worker and the UI timer).
* ``form``: the next run's settings, generated from TrainConfig's form options.
* ``runs``: `Run`, the one interface for a run trained here (`TrainingRun`) and a watched
  one (`WatchedRun`): metric columns, smoothing, state.
* ``runlist``: the runs list (select, pin, hide, filter) and the watched runs it adds.
* ``chart``: `ChartView` and the draw function of the three charts, and their legend.
* ``status``: the one status-line builder.
* ``worker``: what runs in the training and saving threads, and the messages they post.
* ``quit``: asked before quitting while a run's weights were never saved.
"""

from .chart import SMOOTHING_LEVELS, ChartView, Drawn, draw_curves
from .form import FORM_DEFAULTS, FORM_FIELDS, TrainingForm, parse_form
from .quit import QuitScreen
from .runlist import RunList
from .runs import Columns, Run, TrainingRun, WatchedConfig, WatchedRun
from .screen import TrainingScreen
from .status import status_line

__all__ = [
    "FORM_DEFAULTS",
    "FORM_FIELDS",
    "SMOOTHING_LEVELS",
    "ChartView",
    "Columns",
    "Drawn",
    "QuitScreen",
    "Run",
    "RunList",
    "TrainingForm",
    "TrainingRun",
    "TrainingScreen",
    "WatchedConfig",
    "WatchedRun",
    "draw_curves",
    "parse_form",
    "status_line",
]
