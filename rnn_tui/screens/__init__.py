"""The app's screens, one per mode, and the small pieces they share.

Every mode screen composes, top to bottom::

    yield Header()
    yield ModeBar()          # the tab bar: 1 Stepper  2 Training  3 Gradients  4 Sampling ...
    ...                      # the screen's own panels
    yield Footer()

and renders a "loading engine…" state until ``app.engine_ready`` is True (torch is imported
in a thread worker after the first frame). Worker ``StateChanged`` messages do not bubble,
so each screen forwards them to :func:`report_worker_error`, which turns a failed worker
into a notification instead of a traceback.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static
from textual.worker import WorkerState

# mode name -> (key, title); the order is the order of the tabs.
MODE_TABS: dict[str, tuple[str, str]] = {
    "stepper": ("1", "Stepper"),
    "training": ("2", "Training"),
    "gradients": ("3", "Gradients"),
    "sampling": ("4", "Sampling"),
    "dynamics": ("5", "Dynamics"),
    "compare": ("6", "Compare"),
    "lab": ("7", "Lab"),
    "inspector": ("8", "Inspector"),
}

# Shorter tab titles for terminals too narrow for the full ones (80 columns).
MODE_SHORT: dict[str, str] = {
    "stepper": "Step",
    "training": "Train",
    "gradients": "Grads",
    "sampling": "Sample",
    "dynamics": "Dyn",
    "compare": "Comp",
    "lab": "Lab",
    "inspector": "Insp",
}

LOADING_TEXT = "loading engine…"
NO_MODEL_TEXT = "no model loaded: ctrl+p → Load model…"


def waiting_text(app) -> str | None:
    """What a screen shows instead of its content while there is nothing to work on:
    the engine still loading, or no model; None once a model is there."""
    if not getattr(app, "engine_ready", False):
        return LOADING_TEXT
    if getattr(app, "lm", None) is None:
        return NO_MODEL_TEXT
    return None


def fit_text(node, text: str, what: str = "text", squash: bool = True) -> str | None:
    """Text a person typed, made ready for the app's model, with a notification for each change.

    One rule for every screen: whitespace runs become one space (unless not `squash`: a
    prompt's trailing space matters to what comes next); a character model that never
    saw a capital letter reads 'Hello' as 'hello' (not 'ello'); characters it cannot read are
    named (the probes skip them). None, with an error, when it can read none of the text:
    the caller keeps what it had.
    """
    if squash:
        text = " ".join(text.split())
    lm = getattr(node.app, "lm", None)
    if lm is None or not text:
        return text
    vocab = lm.vocab
    if text != text.lower() and vocab.reads_lowercase_only:
        node.notify("lowercased: this model's vocabulary has no capital letters", markup=False, timeout=4)
        text = text.lower()
    try:
        enc = vocab.encode(text, on_unknown="skip")
    except Exception:
        return text
    if len(enc.ids) == 0:
        node.notify(f"the model can read none of this {what}, so it stays as it was: "
                    f"{enc.message() or 'empty'}", severity="error", markup=False, timeout=8)
        return None
    if enc.message():
        node.notify(enc.message(), severity="warning", markup=False, timeout=6)
    return text


class ModeBar(Static):
    """The tab bar under the header. The active tab is the mode that owns this screen.

    ``ModeBar("training")`` names the mode explicitly; without it the bar asks the screen
    (a ``MODE`` class attribute) and then the app's mode stacks. Tabs are clickable.
    """

    DEFAULT_CSS = """
    ModeBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
    }
    """

    def __init__(self, mode: str | None = None, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._mode = mode

    @property
    def mode(self) -> str | None:
        if self._mode:
            return self._mode
        mode = getattr(self.screen, "MODE", None)
        if mode:
            return mode
        for name, stack in getattr(self.app, "_screen_stacks", {}).items():
            if stack and stack[0] is self.screen:
                return name
        return None

    def on_mount(self) -> None:
        self.update(self._content())

    def on_resize(self, event) -> None:
        self.update(self._content())

    def _content(self) -> Content:
        active = self.mode
        parts: list[Content] = []
        full = sum(len(title) + 5 for _, title in MODE_TABS.values()) - 1
        width = self.size.width or (self.app.size.width if self.is_attached else 0)
        short = 0 < width < full
        for name, (key, title) in MODE_TABS.items():
            if short:
                title = MODE_SHORT.get(name, title)
            label = f" {key} {title} "
            if name == active:
                piece = Content.styled(label, "bold reverse $accent")
            else:
                piece = Content.from_markup(
                    f"[@click=app.switch_mode('{name}')]$label[/]", label=label
                )
            parts.append(piece)
        return Content(" ").join(parts)


def report_worker_error(node, event) -> bool:
    """Call from ``on_worker_state_changed``: notify when a worker failed. True if it did.

    ``RnnTuiError`` messages are shown as they are (they are written for a person);
    anything else is shown with its type, since it is a bug worth reporting.
    """
    if event.state != WorkerState.ERROR:
        return False
    error = event.worker.error
    app = node.app
    try:
        from ..engine.errors import RnnTuiError
    except Exception:  # pragma: no cover - the engine package always imports
        RnnTuiError = ()  # type: ignore[assignment]
    if isinstance(error, RnnTuiError):
        app.notify(str(error), severity="error", markup=False, timeout=8)
    else:
        try:
            from ..engine.device import is_oom

            oom = is_oom(error)
        except Exception:
            oom = False
        if oom:
            app.notify("the device ran out of memory: try a smaller model or batch",
                       severity="error", markup=False, timeout=8)
        else:
            app.notify(f"{type(error).__name__}: {error}", title="unexpected error",
                       severity="error", markup=False, timeout=10)
    return True
