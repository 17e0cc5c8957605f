"""Mode 8, Inspector: LSTMVis in the terminal (`screen.py`: data flow and keys; `draw.py`: the
sentence, units and matches panels)."""

from .draw import span_of, token_cells  # noqa: F401
from .screen import InspectorScreen, corpus_text  # noqa: F401
