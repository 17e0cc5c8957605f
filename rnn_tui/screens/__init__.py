"""The app's mode screens, one module (or package) per mode, on the shared base in `base.py`.

Every mode screen is a `base.ModeScreen`: the header, the tab bar, its body, the footer; it
follows the app's model and sentence, computes through `base.KeyedTask` and reports errors
through one path. See docs/architecture.md for how to add one.
"""

from .base import LOADING_TEXT, NO_MODEL_TEXT, report_worker_error, waiting_text  # noqa: F401
from ..widgets.modebar import ModeBar  # noqa: F401
