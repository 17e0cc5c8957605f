"""The training form: the next run's settings, generated from TrainConfig's form options.

One row per `engine.config.form_options()` entry: an Input for numbers and text, a Select for
choices. The form starts from TrainConfig's defaults, then the app's ``train_defaults`` and
``--corpus``; `follow_model` fills it from the model on screen, so space trains the kind of
model the user loaded. Every edit is validated once the engine is up (TrainConfig's own checks,
shown under the form); enter in a field asks the screen to start a run (`TrainingForm.Submitted`).
Under the form, the last few runs of this session.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from ...engine.config import MAX_VOCAB, absolute_paths, form_options, train_option
from ...engine.errors import RnnTuiError
from ...render.colors import hex_code

# name -> (label, kind); kind "int", "float", "str", or a tuple of choices. Defaults are TrainConfig's own.
FORM_FIELDS: dict[str, tuple[str, Any]] = {
    o.name: (o.form, o.choices if o.kind == "choice" else o.kind) for o in form_options()
}
FORM_DEFAULTS: dict[str, Any] = {o.name: o.default for o in form_options()}
RECENT_RUNS = 4  # how many runs the list under the form shows


def applies(opt, values: dict[str, str]) -> bool:
    """Whether a form row is shown and its setting used (the BPE rows: with level bpe)."""
    if opt.shown_with is None:
        return True
    field_name, value = opt.shown_with
    return str(values.get(field_name, FORM_DEFAULTS.get(field_name))).strip().lower() == value


def parse_form(values: dict[str, str], extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """Form text -> TrainConfig keyword arguments. Raises ConfigError naming the bad field.
    A hidden row (see `applies`) gives its default, not what it held when it was shown."""
    out: dict[str, Any] = dict(extras or {})
    for opt in form_options():
        out[opt.name] = opt.parse(values.get(opt.name, "")) if applies(opt, values) else opt.default
    return out


def form_defaults(settings) -> dict[str, Any]:
    """What the form starts from: TrainConfig's defaults, the app's train_defaults, --corpus."""
    values = dict(FORM_DEFAULTS)
    app_defaults = dict(settings.train_defaults)
    values.update({k: v for k, v in app_defaults.items() if k in FORM_FIELDS})
    corpus = settings.corpus
    if isinstance(corpus, str) and corpus and "corpus" not in app_defaults:
        values["corpus"] = corpus
    return values


def form_extras(settings) -> dict[str, Any]:
    """TrainConfig settings the form does not show: the rest of train_defaults, --device."""
    extras = {k: v for k, v in dict(settings.train_defaults).items() if k not in FORM_FIELDS}
    device = settings.device
    if isinstance(device, str) and device and "device" not in extras:
        extras["device"] = device
    return extras


def corpus_problem(spec: str) -> str:
    """A message when the corpus is neither bundled nor a readable file; '' when it looks fine."""
    from ...engine.corpus import BUNDLED_CORPORA

    if spec.strip().lower() in BUNDLED_CORPORA:
        return ""
    path = Path(spec).expanduser()
    if not path.exists():
        return (f"corpus {spec!r} is not a bundled corpus ({', '.join(BUNDLED_CORPORA)}) "
                f"and no such file exists")
    if path.is_dir():
        return f"corpus {spec!r} is a directory, not a text file"
    return ""


def _model_tokenizer_file(lm) -> str | None:
    """RUN/tokenizer.json of a subword model loaded from a run directory, when it holds the
    model's own tokenizer (the run's config.json has the same one; the checkpoint writes both
    from one text, so the sizes tell: no file is read on the event loop)."""
    from ...runs.layout import TOKENIZER_NAME

    source = lm.meta.get("source")
    if not isinstance(source, str) or not source:
        return None
    path = Path(source) / TOKENIZER_NAME
    try:
        if path.is_file() and path.stat().st_size == len(lm.vocab.tokenizer.encode("utf-8")):
            return _short(path)
    except OSError:
        pass
    return None


def _short(path: Path) -> str:
    """A path as the form shows it: relative to where the app runs when it is below it (the
    form's 30 columns), else as it is. The config gets it absolute (`absolute_paths`)."""
    import os

    try:
        rel = os.path.relpath(path.resolve(), Path.cwd())
    except (OSError, ValueError):  # another drive (Windows), a cwd that is gone
        return str(path)
    return rel if not rel.startswith("..") and len(rel) < len(str(path)) else str(path)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class TrainingForm(VerticalScroll, can_focus=False):
    """The next run's settings, the form's error line, and the last few runs."""

    SCOPED_CSS = False  # the rules name the screen, as the screen's own do
    DEFAULT_CSS = """
    TrainingScreen #tr-form {
        width: 30;
        height: 1fr;
        padding: 0 1 0 0;
        border-right: vkey $panel-lighten-2;
        scrollbar-size-vertical: 1;
    }
    TrainingScreen #tr-form.-hidden { display: none; }
    TrainingScreen .tr-row { height: 1; }
    TrainingScreen .tr-row.-hidden { display: none; }
    TrainingScreen .tr-row Label { width: 8; color: $text-muted; }
    TrainingScreen .tr-row Input { width: 1fr; height: 1; }
    TrainingScreen .tr-row Select { width: 1fr; }
    /* An open list gets a frame: bare, its options sat on the rows below like field values. */
    TrainingScreen .tr-row Select > SelectOverlay { border: round $accent !important; background: $panel; }
    TrainingScreen #tr-form-title { color: $text-muted; text-style: bold; }
    TrainingScreen #tr-form-error { color: $error; height: auto; }
    TrainingScreen #tr-runs { height: auto; color: $text-muted; }
    """

    class Submitted(Message):
        """Enter in one of the form's fields: start a run with the form's settings."""

    def __init__(self, values: dict[str, Any], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._values = values
        self._model_version: int | None = None  # the model the form was last filled from
        self._followed_run = False  # it was a run's, not a bundled model

    def compose(self) -> ComposeResult:
        yield Static("next run · space starts", id="tr-form-title")
        for name, (label, kind) in FORM_FIELDS.items():
            with Horizontal(classes="tr-row", id=f"tr-row-{name}"):
                yield Label(label)
                value = self._values[name]
                if isinstance(kind, tuple):
                    yield Select([(c, c) for c in kind], value=value if value in kind else kind[0],
                                 allow_blank=False, compact=True, id=f"tr-{name}")
                else:
                    yield Input(_text(value), compact=True, id=f"tr-{name}", select_on_focus=True)
        yield Static("", id="tr-form-error", markup=False)
        yield Static("", id="tr-runs")

    def on_mount(self) -> None:
        self._show_rows()

    def _show_rows(self) -> None:
        values = self.values()
        for opt in form_options():
            if opt.shown_with is not None:
                self.query_one(f"#tr-row-{opt.name}").set_class(not applies(opt, values), "-hidden")

    # -- reading and filling
    def values(self) -> dict[str, str]:
        return {name: str(self.query_one(f"#tr-{name}").value) for name in FORM_FIELDS}

    def fill(self, **values: Any) -> None:
        for name, value in values.items():
            widget = self.query_one(f"#tr-{name}")
            if isinstance(widget, Select):
                widget.value = value
            else:
                widget.value = _text(value)

    def build_config(self):
        """The form as a TrainConfig; raises ConfigError (shown next to the form by callers)."""
        kwargs = absolute_paths(parse_form(self.values(), form_extras(self.app.settings)))
        from ...engine.train import TrainConfig

        return TrainConfig(**kwargs)

    def follow_model(self, lm, version: int, first_only: bool = False) -> None:
        """Fill cell, sizes, init, level and corpus from the model on screen, once per model
        (the user's edits for the same model stay); ``first_only``: only from the first that is
        not a bundled model (watching: a run's first checkpoint replaces the bundled one)."""
        if lm is None or version == self._model_version or (first_only and self._followed_run):
            return
        self._model_version = version
        from ...session import Session

        # Watching: the bundled model shown until the run's first checkpoint does not count.
        self._followed_run = Session.bundled_name(lm) is None
        c = lm.config
        values = {"cell": c.cell, "hidden": c.hidden, "layers": c.layers, "init": c.init,
                  "level": lm.meta.get("level") or lm.vocab.level}
        corpus = lm.meta.get("corpus")
        if isinstance(corpus, str) and corpus and not corpus_problem(corpus):  # a name it can train on
            values["corpus"] = corpus
        if lm.vocab.level == "bpe":  # the same pieces: the model's own tokenizer file
            values["tokenizer"] = _model_tokenizer_file(lm) or ""
            values["bpe_vocab"] = min(max(len(lm.vocab), train_option("bpe_vocab").low), MAX_VOCAB)
        for name, value in values.items():
            kind = FORM_FIELDS.get(name, (None, None))[1]
            if name in FORM_FIELDS and (not isinstance(kind, tuple) or value in kind):
                self.fill(**{name: value})

        self._show_rows()

    # -- showing
    def show_error(self, message: str) -> None:
        self.query_one("#tr-form-error", Static).update(message)
        if message:
            self.remove_class("-hidden")

    def show_runs(self, runs: list) -> None:
        """The last few runs under the form: colour, name, state, whether saved."""
        lines = Text()
        for run in runs[-RECENT_RUNS:]:
            if lines:
                lines.append("\n")
            lines.append("■ ", style=hex_code(run.color))
            lines.append(f"{run.short_label} {run.state}")
            if run.saved_to:
                lines.append(" (saved)", style="dim")
        self.query_one("#tr-runs", Static).update(lines)

    # -- events
    @on(Input.Changed)
    @on(Select.Changed)
    def _validate(self, event) -> None:
        event.stop()
        self._show_rows()
        if "torch" not in sys.modules or not self.app.engine_ready:
            return  # TrainConfig's checks import the engine: not before it is up
        try:
            self.build_config()
        except RnnTuiError as exc:
            self.show_error(str(exc))
        else:
            self.show_error("")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted())
