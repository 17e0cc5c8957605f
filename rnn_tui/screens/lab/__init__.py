"""Mode 7, Lab: every experiment of the engine as a preset.

Pick one from the list (its two-line explanation shows beside it), enter runs it in a thread
worker with a progress bar, escape or ctrl+c stops it (the partial result is still drawn).
The result is drawn as charts (loss curves, the parity trajectory coloured by parity, zog's
PCA plane with category labels, agreement by distractor length, memory by lag...) or text
(temperature samples side by side), with the experiment's own table and findings under it.
v cycles the views of a result; q switches between the default and the quick settings.

Results are kept in ``app.session.lab_results`` (name -> result) so other screens can use them (the
dynamics screen shows the memory horizon per hidden size from it).

Each experiment's views sit in a module of their own here, registered with `LabViews` (see
`views`); an experiment added to the engine adds its view module and its line below.
"""

from . import (  # noqa: F401 - each registers its views, in the engine's order
    parity, init_schemes, clipping, tbptt, zog, temperature, agreement, memory_horizon, spectral,
    elman, capacity, saturation, connectivity, failure_modes,
)
from .screen import LabScreen, registry, summary_text
from .views import LAB_VIEWS, LabView, LabViews, views_of

__all__ = ["LabScreen", "registry", "summary_text", "LAB_VIEWS", "LabView", "LabViews", "views_of"]
