"""Mode 5, Dynamics: the recurrence as a dynamical system (`screen.py`: data flow and keys;
`draw.py`: the four panels)."""

from .draw import lab_horizon_table, regime, sparkline, summarize_horizon  # noqa: F401
from .screen import DynamicsScreen  # noqa: F401
