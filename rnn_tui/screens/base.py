"""What every mode screen shares: the frame, the waiting state, one error path, keyed tasks.

A mode screen is a `ModeScreen` subclass that names itself and composes its body::

    class GradientsScreen(ModeScreen):
        MODE, KEY, LABEL, SHORT = "gradients", "3", "Gradients", "Grads"
        TOOLTIP = "How far back gradients reach"

        def compose_body(self):          # between the header + mode bar and the footer
            yield Chart(self.draw, id="gr-chart")

        def on_mount(self):
            self.profile = KeyedTask(self, "profile", self.compute, self.show)

        def inputs_changed(self):        # the model, sentence or engine changed (or first show)
            self.profile.request((self.app.model_version, self.app.sentence), self.app.lm, ...)

`inputs_changed` runs when the screen is shown and whenever the app's model, sentence or
engine state changes while it is shown; a screen that is not shown catches up when it is.
While the engine loads or no model is loaded, `show_waiting(text)` is called instead.

`KeyedTask` is the one way a screen computes: ``compute(*args)`` runs in an exclusive thread
worker (a newer request cancels the older one), returns a value or yields several (partial
results first), and each value reaches ``deliver(key, value)`` on the event loop only while
its key is still the one the screen wants. Errors reach ``on_error(key, error)`` the same way,
after one notification (`report_error`); a superseded request's error is dropped. Torch never
runs on the event loop: ``compute`` imports the engine lazily.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Hashable, Iterator

from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..widgets.modebar import ModeBar

MIN_SIZE = (60, 20)  # columns, rows: below this the panels do not fit, and a notice says so
LOADING_TEXT = "loading engine…"
NO_MODEL_TEXT = "no model loaded: ctrl+p → Load model…"
APP_INPUTS = ("model_version", "sentence_version", "engine_ready")


def waiting_text(app) -> str | None:
    """What a screen shows instead of its content while there is nothing to work on:
    the engine still loading, or no model; None once a model is there."""
    if not app.engine_ready:
        return LOADING_TEXT
    if app.lm is None:
        return NO_MODEL_TEXT
    return None


OOM_TEXT = "the device ran out of memory: try a smaller model or batch"


def describe_error(error: BaseException) -> str:
    """The one line a person reads about a failed computation (what `report_error` shows)."""
    from ..engine.errors import RnnTuiError  # no torch: errors.py is plain Python

    if isinstance(error, RnnTuiError):
        return str(error)
    try:
        import sys

        if "torch" in sys.modules:
            from ..engine.device import is_oom

            if is_oom(error):
                return OOM_TEXT
    except Exception:  # noqa: BLE001 - classifying an error must not raise another
        pass
    return f"{type(error).__name__}: {error}"


def report_error(app, error: BaseException) -> None:
    """One notification for a failed computation.

    ``RnnTuiError`` messages are shown as they are (they are written for a person); running
    out of device memory says what to do; anything else is shown with its type, since it is
    a bug worth reporting. Never a traceback."""
    from ..engine.errors import RnnTuiError

    text = describe_error(error)
    if isinstance(error, RnnTuiError) or text == OOM_TEXT:
        app.notify(text, severity="error", markup=False, timeout=8)
    else:
        app.notify(text, title="unexpected error", severity="error", markup=False, timeout=10)


def report_worker_error(node, event: Worker.StateChanged) -> bool:
    """For ``on_worker_state_changed``: notify when a worker failed. True if it did."""
    if event.state != WorkerState.ERROR:
        return False
    report_error(node.app, event.worker.error)
    return True


class CancelAwareEvent(threading.Event):
    """A stop event for the engine that also reads as set once the worker is cancelled
    (a newer request, the screen going away, the app quitting)."""

    def __init__(self, worker, *bases: threading.Event | None) -> None:
        super().__init__()
        self._worker = worker
        self._bases = [b for b in bases if b is not None]

    def is_set(self) -> bool:  # type: ignore[override]
        return super().is_set() or any(b.is_set() for b in self._bases) or self._worker.is_cancelled

    @property
    def cancelled(self) -> bool:
        """The worker itself was cancelled (not just asked to stop): nobody waits for its results."""
        return self._worker.is_cancelled


def stop_event(*bases: threading.Event | None) -> CancelAwareEvent:
    """Inside a thread worker: an event the engine's long loops can poll to stop early (set
    when any of `bases` is, or the worker is cancelled)."""
    return CancelAwareEvent(get_current_worker(), *bases)


# ------------------------------------------------------------------------ keyed tasks
@dataclass
class Partial:
    """Yield ``Partial(value)`` from a task for progress that a later value replaces: queued
    progress of the same request is merged, so a slow event loop never falls behind."""

    value: Any


@dataclass
class TaskResult(Message, bubble=False):
    """A value a task's worker computed (posted to the screen that owns the task)."""

    task: str
    key: Hashable
    value: Any
    partial: bool = False

    def can_replace(self, message: Message) -> bool:
        return (self.partial and isinstance(message, TaskResult) and message.partial
                and message.task == self.task and message.key == self.key)


@dataclass
class TaskFailed(Message, bubble=False):
    task: str
    key: Hashable
    error: BaseException


_running = threading.local()  # the (task, key, worker) a worker thread computes for


def emit(value: Any) -> None:
    """From inside a task's compute, however deep (an engine progress callback): post
    ``Partial(value)`` now. Does nothing outside a task's worker or once it is cancelled."""
    ctx = getattr(_running, "ctx", None)
    if ctx is not None and not ctx[2].is_cancelled:
        task, key, _ = ctx
        task.screen.post_message(TaskResult(task.name, key, value, partial=True))


class KeyedTask:
    """Compute in a thread, deliver only what is still wanted, one request at a time.

    ``key`` is what the shown result was computed for, ``pending`` what is being computed
    (until its first value that is not a `Partial`), ``failed`` the last key whose computation
    raised (not retried until asked with force)."""

    def __init__(self, screen: "ModeScreen", name: str, compute: Callable[..., Any],
                 deliver: Callable[[Hashable, Any], None],
                 on_error: Callable[[Hashable, BaseException], None] | None = None,
                 *, report: bool = True) -> None:
        self.screen = screen
        self.name = name
        self.compute = compute
        self.deliver = deliver
        self.on_error = on_error
        self.report = report
        self.key: Hashable | None = None
        self.pending: Hashable | None = None
        self.failed: Hashable | None = None
        screen._tasks[name] = self

    @property
    def busy(self) -> bool:
        return self.pending is not None

    def wants(self, key: Hashable) -> bool:
        """Whether a request for key would start work (it is neither shown, pending nor failed)."""
        return key not in (self.key, self.pending, self.failed) or key is None

    def request(self, key: Hashable, *args: Any, force: bool = False) -> bool:
        """Compute for key unless it is already shown, being computed or known to fail.
        True when a worker was started."""
        if not force and not self.wants(key):
            return False
        self.pending = key
        self.screen.run_worker(lambda: self._run(key, args), name=self.name, group=f"task:{self.name}",
                               thread=True, exclusive=True, exit_on_error=False)
        return True

    def cancel(self) -> None:
        """Drop the request being computed (its results will not be delivered)."""
        self.pending = None
        self.screen.workers.cancel_group(self.screen, f"task:{self.name}")

    def forget(self) -> None:
        """Forget what was shown and what failed: the next request computes again."""
        self.key = self.failed = None

    # worker thread
    def _run(self, key: Hashable, args: tuple) -> None:
        worker = get_current_worker()
        screen = self.screen
        _running.ctx = (self, key, worker)
        try:
            out = self.compute(*args)
            values: Iterator[Any] = out if _is_generator(out) else iter((out,))
            for value in values:
                if worker.is_cancelled:
                    return
                partial = isinstance(value, Partial)
                screen.post_message(TaskResult(self.name, key, value.value if partial else value, partial))
        except Exception as exc:  # noqa: BLE001 - delivered to the screen, shown as one line
            if not worker.is_cancelled:
                screen.post_message(TaskFailed(self.name, key, exc))
        finally:
            _running.ctx = None

    # event loop
    def _accept(self, key: Hashable, partial: bool) -> bool:
        if self.pending is not None:
            if key != self.pending:
                return False  # superseded by a newer request
            if not partial:  # the first real value: the request is answered
                self.pending = None
                self.key = key
                self.failed = None
            return True
        return key == self.key  # a later value of the request on show

    def _result(self, message: TaskResult) -> None:
        if self._accept(message.key, message.partial):
            self.deliver(message.key, message.value)

    def _failed(self, message: TaskFailed) -> None:
        if message.key != self.pending and not (self.pending is None and message.key == self.key):
            return
        if message.key == self.pending:
            self.pending = None
            self.failed = message.key
        if self.report:
            report_error(self.screen.app, message.error)
        if self.on_error is not None:
            self.on_error(message.key, message.error)


def _is_generator(value: Any) -> bool:
    import types

    return isinstance(value, types.GeneratorType)


# ------------------------------------------------------------------------ the frame
class ModeScreen(Screen):
    """Header, mode bar, the screen's body, footer; follows the app's model and sentence."""

    MODE: ClassVar[str] = ""
    KEY: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""  # the tab's title (not TITLE: Textual shows that in the header)
    SHORT: ClassVar[str] = ""
    TOOLTIP: ClassVar[str] = ""
    PANEL_HELP: ClassVar[dict[str, str]] = {}  # panel -> two lines, shown by ? (Textual's HELP is markdown)
    AUTO_FOCUS = ""  # nothing: the keys drive the screen, not a widget
    # App reactives this screen follows; a change calls inputs_changed (or show_waiting).
    FOLLOWS: ClassVar[tuple[str, ...]] = APP_INPUTS
    NEEDS_MODEL: ClassVar[bool] = True  # False: inputs_changed runs with no model too (lm None)

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._tasks: dict[str, KeyedTask] = {}
        self._behind = False  # the app changed while this screen was not shown

    DEFAULT_CSS = """
    ModeScreen #too-small { display: none; width: 1fr; height: 1fr; content-align: center middle;
                            text-align: center; padding: 0 1; }
    ModeScreen.-too-small > * { display: none; }
    ModeScreen.-too-small > #too-small { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE)
        yield from self.compose_body()
        yield Footer()
        yield Static("", id="too-small", markup=False)

    def _on_resize(self, event) -> None:
        self._check_size(*event.size)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        if small:
            self.query_one("#too-small", Static).update(
                f"rnn-tui needs a terminal of at least {MIN_SIZE[0]}x{MIN_SIZE[1]}; this one is "
                f"{width}x{height}. Make the window larger (ctrl+q quits).")
        self.set_class(small, "-too-small")

    def compose_body(self) -> ComposeResult:
        yield from ()

    def _on_mount(self, event) -> None:
        for name in self.FOLLOWS:
            self.watch(self.app, name, self._app_changed, init=False)

    def _on_screen_resume(self, event) -> None:
        self._check_size(*self.app.size)  # the terminal may have changed while another screen showed
        self._behind = False
        self.refresh_inputs()

    def _app_changed(self, _value=None) -> None:
        self.app_changed()
        if self.is_current:
            self.refresh_inputs()
        else:
            self._behind = True

    def refresh_inputs(self) -> None:
        """Show the waiting line, or let the screen request what its inputs need."""
        waiting = waiting_text(self.app)
        if waiting == NO_MODEL_TEXT and not self.NEEDS_MODEL:
            waiting = None
        self.show_waiting(waiting)
        if waiting is None:
            self.inputs_changed()

    # -- for subclasses
    def app_changed(self) -> None:
        """Called on every change of what the screen follows, shown or not (cheap work only)."""

    def inputs_changed(self) -> None:
        """Request what the current model / sentence need (called only while shown)."""

    def show_waiting(self, text: str | None) -> None:
        """Show ``text`` instead of the content (None: the content)."""

    def fit_text(self, text: str, what: str = "text", squash: bool = True, limit: int | None = None,
                 offer: Callable[[str], None] | None = None) -> str | None:
        """Text a person typed, made ready for the app's model, with a notification for each change.

        One rule for every screen: whitespace runs become one space (unless not `squash`: a
        prompt's trailing space matters to what comes next); a character model that never
        saw a capital letter reads 'Hello' as 'hello' (not 'ello'); characters it cannot read
        are named (the probes skip them). None, with an error, when it can read none of the
        text: the caller keeps what it had. With `limit` (tokens: a sentence the probes read
        whole) a longer text is refused too, and `offer` is given the end of it that fits (the
        caller puts it back in its editor)."""
        from ..engine.textfit import fit_sentence, fit_text

        lm = self.app.lm
        vocab = lm.vocab if lm is not None else None
        tail = None
        if limit is None:
            fitted, notes = fit_text(vocab, text, what, squash)
        else:
            fitted, notes, tail = fit_sentence(vocab, text, what, limit)
        for severity, note in notes:
            timeout = {"error": 8, "warning": 6}.get(severity, 4)
            self.notify(note, severity=severity, markup=False, timeout=timeout)
        if tail is not None and offer is not None:
            offer(tail)
        return fitted

    # -- message routing
    def on_task_result(self, message: TaskResult) -> None:
        task = self._tasks.get(message.task)
        if task is not None:
            task._result(message)

    def on_task_failed(self, message: TaskFailed) -> None:
        task = self._tasks.get(message.task)
        if task is not None:
            task._failed(message)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Workers outside keyed tasks (a screen's own) fail into the same notification."""
        report_worker_error(self, event)
