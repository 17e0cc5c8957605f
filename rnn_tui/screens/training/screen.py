"""Mode 2, Training: train a model live, watch its curves, compare runs.

A thread worker runs ``Trainer.run`` for the newest run. The training thread never touches a
widget: its ``on_metrics`` callback queues each step on the run, and a 0.3 s UI timer drains
every run, updates the status line and redraws the charts (only those on screen, only when
something changed, and less often when drawing gets expensive). Watched runs (`rnn-tui
watch`) are drained by the same timer from the app's watcher.

Every few seconds (and at the end) the training thread takes ``trainer.snapshot()`` and posts
it; the screen hands it to ``app.set_model`` so the other modes read the newest weights. The
worker stops within one training step when the user stops the run, the screen goes away or
the app quits (its stop event also reads the worker's cancel flag).

Torch is imported only inside the workers and by the form's checks once the engine is up,
so this module is cheap to import before the first frame.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from functools import partial

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ...engine.errors import RnnTuiError
from ...runs.layout import CONFIG_NAME
from ...widgets.chart import Chart
from ..base import ModeScreen, describe_error, report_error, stop_event
from . import worker
from .chart import ChartView, draw_curves, legend_text, metric_names
from .form import TrainingForm, corpus_problem, form_defaults
from .quit import QuitScreen, unsaved_summary
from .runlist import RunList, next_index
from .runs import Run, TrainingRun
from .status import idle_line, status_line
from .worker import CheckpointSaved, ModelSnapshot, SavedToQuit, TrainingEnded, TrainingStarted
from ..keymap import keymap

SNAPSHOT_EVERY_S = 3.0  # how often training hands fresh weights to the other modes
DRAIN_EVERY_S = 0.3


def _watch_clock() -> float:
    from ...runs import watch

    return watch.clock()  # looked up at each call: tests freeze runs.watch.clock


# ------------------------------------------------------------------------ the screen
class TrainingScreen(ModeScreen):
    """Train a model, watch the loss, gradient norm and speed, compare runs."""

    MODE, KEY, LABEL, SHORT = "training", "2", "Training", "Train"
    TOOLTIP = "Train the model and watch loss, gradients and weights live"
    FOLLOWS = ()  # nothing: it follows the model when shown, and its runs by its own timer
    NEEDS_MODEL = False  # a run needs no model on screen
    PANEL_HELP = {
        "curves": "Loss (raw faint, smoothed bright, validation dotted), gradient norm before clipping,\n"
                  "tokens/s, m a named metric; one colour per run. , . smoothing · u nats/bits/ppl · y x log axes · w x axis",
        "form": "The next run's settings (tab in; enter or space starts; f hides it). Errors show under it.\n"
                "While it trains the other modes follow the newest weights; ctrl+s saves runs/<time>-<cell>/.",
        "status": "Step, epoch, loss in nats and bits per token, validation loss, tokens/s and ETA.\n"
                  "A red banner says when a run diverged (the last good weights are kept).",
        "runs": "rnn-tui watch RUN_DIR... or LOGDIR: runs another process trains, followed as metrics.jsonl or TensorBoard event files grow\n"
                "(r shows the list). ↑↓ select · p pin (on top; its checkpoints feed the other modes) · h hide · / filter",
    }
    snapshot_every_s = SNAPSHOT_EVERY_S  # how often the other modes get fresh weights

    BINDINGS = keymap("""
        escape = esc               | leave_form      | Leave field | training.leave_form  | Move the keyboard focus out of the form (in the runs filter: clear it)
        space                      | toggle_run      | Start/pause | training.toggle      | Start a run with the form's settings; pause or resume the current run
        s                          | stop            | Stop        | training.stop        | Stop the current run (it stays on the chart)
        ctrl+s                     | save            | Save        | training.save        | Save the newest run (weights and curve) to runs/<time>-<cell>/
        c                          | view('chart')   | -Chart      | training.chart       | Show loss, gradient norm, tokens/s, or all three
        m                          | view('metric+') | -Metric+    | training.metric      | Chart one named metric (a RunWriter run's own, a TensorBoard tag, lr); again: the next one (/ narrows them)
        M                          | view('metric-') | -Metric-    | training.metric_prev | The named metric before this one
        u                          | view('unit')    | -Units      | training.units       | Loss in nats, bits per token or perplexity
        f                          | toggle_form     | Form        | training.form        | Show or hide the settings form
        comma,minus                | view('smooth-') | -Smooth-    | training.smooth_less | Less smoothing of the curves
        full_stop,plus,equals_sign | view('smooth+') | -Smooth+    | training.smooth_more | More smoothing of the curves (up to 0.999)
        y                          | view('log_y')   | -Log y      | training.log_y       | Logarithmic y axis
        x                          | view('log_x')   | -Log x      | training.log_x       | Logarithmic x axis
        w                          | view('xaxis')   | -X axis     | training.xaxis       | x axis by step, training time or wall-clock time
        delete                     | clear_runs      | -Clear runs | training.clear       | Remove finished runs from the chart
        r                          | toggle_runlist  | -Runs       | training.runlist     | Show or hide the runs list (watched runs and this session's)
        up                         | select_run(-1)  | -Prev run   | training.run_up      | Runs list: select the run above (the status line describes it)
        down                       | select_run(1)   | -Next run   | training.run_down    | Runs list: select the run below
        p                          | pin_run         | Pin         | training.pin         | Pin the selected run: always shown, drawn on top, first in the legend; the other modes show a pinned watched run's newest checkpoint
        h                          | hide_run        | Hide        | training.hide        | Hide or show the selected run's curves
        slash = /                  | filter_runs     | Filter      | training.filter      | Show only runs whose name contains some text, or else the runs with a metric (a tag) that does, which the metric chart then picks from (enter keeps it, escape clears it)
        """)

    DEFAULT_CSS = """
    TrainingScreen #tr-banner {
        display: none;
        height: auto;
        background: $error;
        color: $text;
        text-style: bold;
        padding: 0 1;
    }
    TrainingScreen #tr-banner.-shown { display: block; }
    TrainingScreen #tr-body { height: 1fr; }
    TrainingScreen #tr-charts { width: 1fr; height: 1fr; }
    TrainingScreen #tr-charts Chart { min-height: 6; }
    TrainingScreen #tr-lower { height: 1fr; }
    TrainingScreen #tr-legend { height: auto; max-height: 3; }
    TrainingScreen #tr-status { height: auto; max-height: 2; padding: 0 1; background: $boost; }
    TrainingScreen #tr-view { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    TrainingScreen .tr-hidden { display: none; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.runs: list[Run] = []  # changed in place only: the runs list reads it
        self.view = ChartView()
        self._dirty = True  # the charts need a redraw
        self._drawn_runs: list[Run] | None = None  # what the charts draw (None: nothing yet)
        self._last_draw = 0.0
        self._status_plain = ""
        self._quitting = False  # saving every unsaved run, then quitting
        self._save_lock = threading.Lock()

    # ---------------------------------------------------------------- layout
    def compose_body(self) -> ComposeResult:
        yield Static("", id="tr-banner", markup=False)
        with Horizontal(id="tr-body"):
            yield TrainingForm(form_defaults(self.app.settings), id="tr-form")
            yield RunList(self.runs, id="tr-runlist", classes="-hidden")
            with Vertical(id="tr-charts"):
                yield Chart(partial(self._draw, "loss"), id="tr-chart-loss")
                with Horizontal(id="tr-lower"):
                    yield Chart(partial(self._draw, "grad"), id="tr-chart-grad")
                    yield Chart(partial(self._draw, "speed"), id="tr-chart-speed")
                yield Static("", id="tr-legend")
        yield Static("", id="tr-status")
        yield Static("", id="tr-view")

    @property
    def form(self) -> TrainingForm:
        return self.query_one("#tr-form", TrainingForm)

    @property
    def runlist(self) -> RunList:
        return self.query_one("#tr-runlist", RunList)

    def on_mount(self) -> None:
        size = self.app.size
        if size.width >= 120 and size.height >= 36:
            self.view.chart = "all"
        if self.watching:  # `rnn-tui watch`: the runs list instead of the form
            # The watched run's first checkpoint fills the form even while this screen shows.
            self.watch(self.app, "model_version", lambda _v: self.inputs_changed(), init=False)
            self.form.add_class("-hidden")
            self.runlist.remove_class("-hidden")
            self._footer_for_watching()
        self._apply_chart_layout()
        self.runlist.follow(self.app.watcher, _watch_clock())
        self._update_view_line()
        self._update_status()
        self._update_runs()
        self.set_interval(DRAIN_EVERY_S, self._tick, name="training-drain")

    def inputs_changed(self) -> None:
        """Shown again: start the form from the model on screen (not under a run in progress).
        Watching a run, whose checkpoints replace the model as it trains: from the first only,
        so a new checkpoint does not undo what the user typed in the form."""
        if not any(isinstance(r, TrainingRun) and r.state in ("running", "paused") for r in self.runs):
            self.form.follow_model(self.app.lm, self.app.model_version, first_only=self.watching)

    def on_screen_resume(self) -> None:
        self._dirty = True
        self._redraw()

    def on_resize(self) -> None:
        self._dirty = True

    def _apply_chart_layout(self) -> None:
        chart = self.view.chart
        self.query_one("#tr-chart-loss").display = chart in ("loss", "all", "metric")  # metric: in its place
        chart = "loss" if chart == "metric" else chart
        self.query_one("#tr-lower").display = chart != "loss"
        self.query_one("#tr-chart-grad").display = chart in ("grad", "all")
        self.query_one("#tr-chart-speed").display = chart in ("speed", "all")
        self._dirty = True

    # ---------------------------------------------------------------- form
    def on_training_form_submitted(self, message: TrainingForm.Submitted) -> None:
        if self._current_active() is None:
            self.action_toggle_run()

    def action_leave_form(self) -> None:
        if self.focused is not None and self.focused.id == "tr-filter" and self.runlist.clear_filter():
            self._selection_changed(redraw=True)  # escape in the filter clears it
        self.set_focus(None)
        self.runlist.refresh_list()

    def action_toggle_form(self) -> None:
        form = self.form
        form.toggle_class("-hidden")
        if form.has_class("-hidden") and form.has_focus_within:
            self.set_focus(None)
        self._dirty = True

    # ---------------------------------------------------------------- running
    def _current_active(self) -> TrainingRun | None:
        return next((r for r in reversed(self.runs) if r.active), None)

    def _run(self, index: int) -> Run | None:
        return next((r for r in self.runs if r.index == index), None)

    def action_toggle_run(self) -> None:
        run = self._current_active()
        if run is None:
            self.start_run()
        elif run.state == "running" and run.trainer is not None:
            run.trainer.pause()
            run.state = "paused"
        elif run.state == "paused" and run.trainer is not None:
            run.trainer.resume()
            run.state = "running"
        self._update_status()
        self._update_runs()

    def action_toggle_training(self) -> None:
        """The palette's "train" command (app.action_train) lands here."""
        self.action_toggle_run()

    def start_run(self) -> TrainingRun | None:
        """Validate the form and start a new run; returns it, or None with the error shown."""
        if not self.app.engine_ready:
            self.notify("the engine is still loading; try again in a moment", severity="warning")
            return None
        form = self.form
        try:
            config = form.build_config()
            problem = corpus_problem(config.corpus)
        except RnnTuiError as exc:
            problem = str(exc)
        if problem:
            form.show_error(problem)
            self.notify(problem, title="cannot start training", severity="error", markup=False)
            return None
        form.show_error("")
        run = TrainingRun(next_index(self.runs), config)
        self.runs.append(run)
        self.runlist.select(run)  # the status line follows the new run
        self.refresh_bindings()
        self.banner("")
        self._train(run)
        if form.has_focus_within:  # enter in a field started it: the keys go back to the screen
            self.set_focus(None)
        if self.size.width < 110:  # give the chart the width while training
            form.add_class("-hidden")
        self._update_status()
        self._update_runs()
        self._dirty = True
        return run

    def action_stop(self) -> None:
        run = self._current_active()
        if run is None:
            self.notify("nothing is training", severity="information")
            return
        run.state = "stopping"
        run.stop.set()
        if run.trainer is not None:
            run.trainer.request_stop()
        self._update_status()
        self._update_runs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self, run: TrainingRun) -> None:
        worker.train(run, stop_event(run.stop), self.post_message, lambda: self.snapshot_every_s)

    def on_training_started(self, message: TrainingStarted) -> None:
        run = self._run(message.run_index)
        if run is None:
            return
        run.trainer = message.trainer
        if run.state == "starting":
            run.state = "running"
        elif run.state == "stopping":
            message.trainer.request_stop()
        self.app.trainer = message.trainer
        self._update_status()
        self._update_runs()

    def on_model_snapshot(self, message: ModelSnapshot) -> None:
        lm, run = message.lm, self._run(message.run_index)
        if lm is None:
            return
        if run is not None:  # the header names these weights on every screen, as watch mode does
            lm.meta["watch"] = {"run": run.short_label, "step": (lm.meta.get("metrics") or {}).get("step")}
        try:  # the periodic hand-over is silent; the app announces the final weights
            self.app.set_model(lm, announce=message.final)
        except RnnTuiError as exc:
            report_error(self.app, exc)

    def on_training_ended(self, message: TrainingEnded) -> None:
        run = self._run(message.run_index)
        if run is None:
            return
        run.drain()
        run.finish(message.result, describe_error(message.error) if message.error is not None else "")
        if message.error is not None:
            self.form.show_error(run.message)
            report_error(self.app, message.error)
            if not len(run.cols):  # nothing to show: do not keep an empty run around
                self.runs.remove(run)
        elif run.state == "diverged":
            self.banner(f"⚠ DIVERGED: {run.message}")
            self.notify(run.message, title=f"run #{run.index} diverged", severity="error", markup=False)
        elif run.state == "failed":  # out of memory
            self.banner(f"⚠ {run.message}")
            self.notify(run.message, severity="error", markup=False)
        self._dirty = True
        self._update_status()
        self._update_runs()
        self._redraw()

    # ---------------------------------------------------------------- saving and quitting
    def action_save(self) -> None:
        run = next((r for r in reversed(self.runs) if r.trainer is not None), None)
        if run is None:
            self.notify("nothing to save yet: start a run with space", severity="warning")
            return
        self._save([run])

    @work(thread=True, exclusive=False, exit_on_error=False, group="training-save")
    def _save(self, runs: list[TrainingRun], then_quit: bool = False) -> None:
        runs_dir, saved = self.app.settings.runs_dir, []
        with self._save_lock:  # one save at a time: ctrl+s twice in a row writes one directory
            for run in runs:  # a run saved before goes on in its directory (newer weights and curve)
                target = run.save_dir or worker.save_target(runs_dir, run.config.cell)
                saved.append(worker.save(run, target))
                if (target / CONFIG_NAME).exists():
                    run.save_dir = target
        for message in saved:
            self.post_message(message)
        if then_quit:
            self.post_message(SavedToQuit(saved))

    def on_checkpoint_saved(self, message: CheckpointSaved) -> None:
        if message.error is not None:
            report_error(self.app, message.error)
            return
        run = self._run(message.run_index)
        if isinstance(run, TrainingRun):
            run.saved_to, run.saved_step = message.path, message.step
        self.notify(f"saved run #{message.run_index} to {message.path}", title="checkpoint saved", markup=False)
        self._update_runs()

    def confirm_quit(self) -> bool:
        """ctrl+q: ask first while runs trained here have weights never saved; True when asking
        (the app stays). Asked already, or saving to quit: ctrl+q again quits at once."""
        unsaved = [r for r in self.runs if isinstance(r, TrainingRun) and r.unsaved]
        if not unsaved or self._quitting or isinstance(self.app.screen, QuitScreen):
            return False
        self.app.push_screen(QuitScreen(unsaved_summary(unsaved, self.app.settings.runs_dir)), self._quit_chosen)
        return True

    def _quit_chosen(self, choice: str | None) -> None:
        if choice == "quit":
            self.app.exit()
        elif choice == "save":
            runs = [r for r in self.runs if isinstance(r, TrainingRun) and r.unsaved]
            for run in runs:  # no step is lost between the save and the exit
                if run.state == "running":
                    run.trainer.pause()
                    run.state = "paused"
            self._quitting = True
            self.notify("saving before quitting… (ctrl+q again: quit without waiting)", markup=False)
            self._save(runs, then_quit=True)

    def on_saved_to_quit(self, message: SavedToQuit) -> None:
        self._quitting = False
        if any(m.error is not None for m in message.saved):
            self.notify("not quitting: a run could not be saved (ctrl+q, then q: quit without saving)",
                        severity="error", markup=False, timeout=10)
            return
        self.app.exit(message="\n".join(f"saved run #{m.run_index} to {m.path}" for m in message.saved))

    # ---------------------------------------------------------------- view keys
    def action_view(self, what: str) -> None:
        """A view key: smoothing, units, x axis, log axes, which charts (`ChartView.change`)."""
        if not self.view.change(what, metric_names(self.visible_runs, self.run_filter)):
            self.notify("no named metrics yet: a run's own (RunWriter.log(step, accuracy=...)) or a TensorBoard tag")
            return
        if what in ("chart", "metric+", "metric-"):
            self._apply_chart_layout()
        self._view_changed()
        if what in ("unit", "chart", "metric+", "metric-"):
            self._update_status()

    def action_clear_runs(self) -> None:
        before = len(self.runs)
        self.runs[:] = [r for r in self.runs if r.active or r.watch is not None]
        if len(self.runs) == before:
            self.notify("no finished runs to clear")
        self.runlist.forget_removed()
        self._dirty = True
        self._update_status()  # not the status of a run that is gone
        self._update_runs()
        self._redraw()

    def refresh_runs(self) -> None:
        """Redraw everything that shows the runs (after runs were added or removed)."""
        for run in self.runs:
            run.drain()
        self._dirty = True
        self._update_status()
        self._update_runs()
        self._redraw()

    def _view_changed(self) -> None:
        self._update_view_line()
        self._dirty = True
        self._redraw()

    # ---------------------------------------------------------------- drawing
    def _tick(self) -> None:
        listed = self.runlist.follow(self.app.watcher, _watch_clock())
        got = sum(run.drain() for run in self.runs)
        if listed:
            self._update_runs()
        elif got:
            self.runlist.refresh_list()  # the steps in the list
        status_run = self.status_run
        if got or listed:
            self._dirty = True
            self._update_status()
        elif status_run is not None and status_run.watch is not None:
            self._update_status()  # "updated 3 s ago" moves on
        if self._dirty:
            # Plotext builds on the UI thread; with many long runs on a big chart keep that
            # under a quarter of the time so keys stay responsive.
            cost = sum(c.render_seconds for c in self.query(Chart) if c.display)
            if time.monotonic() - self._last_draw >= max(DRAIN_EVERY_S * 0.9, 4 * cost):
                self._redraw()

    def redraw(self) -> None:
        """Draw the charts and the legend again now (when on screen)."""
        self._dirty = True
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_current and self.app.is_running:
            return  # drawn on resume
        if not self._dirty:
            return
        self._dirty = False
        self._last_draw = time.monotonic()
        self._drawn_runs = self.visible_runs
        if self.view.chart == "metric" and self.view.pick_metric(metric_names(self._drawn_runs, self.run_filter)):
            self._update_view_line()  # the filter chose another metric
            self._update_status()
        for chart in self.query(Chart):  # a hidden chart is not rendered
            chart.refresh()
        self._update_legend()

    def _draw(self, kind: str, plt, width: int, height: int):
        """A chart's draw function: the runs of the last redraw, as the view says."""
        if self._drawn_runs is None:
            return None
        kind = "metric" if kind == "loss" and self.view.chart == "metric" else kind
        return draw_curves(plt, width, height, kind, self._drawn_runs, self.view)

    def _update_view_line(self) -> None:
        self.query_one("#tr-view", Static).update(self.view.describe())

    def _update_legend(self) -> None:
        self.query_one("#tr-legend", Static).update(legend_text(self.visible_runs, bool(self.runs), self.view))

    def _update_runs(self) -> None:
        self.form.show_runs(self.runs)
        self.runlist.refresh_list()
        self._update_legend()

    @property
    def status_run(self) -> Run | None:
        """The run the status line describes: the selected one, else the newest."""
        selected = self.runlist.selected
        if selected is not None:
            return selected
        return self.runs[-1] if self.runs else None

    def status_text(self, run: Run | None = None) -> Text:
        """The status line of a run (default: the selected or newest one; with none, how to start)."""
        run = run or self.status_run
        if run is None:
            return idle_line(self.app.settings.watch_roots)
        metric = self.view.metric if self.view.chart == "metric" else ""
        return status_line(run, self.view.unit, _watch_clock(), self.app.watcher, metric)

    def _update_status(self) -> None:
        text = self.status_text()
        if text.plain != self._status_plain or not self._status_plain:
            self._status_plain = text.plain
            self.query_one("#tr-status", Static).update(text)

    def banner(self, text: str) -> None:
        banner = self.query_one("#tr-banner", Static)
        banner.update(text)
        banner.set_class(bool(text), "-shown")

    # ---------------------------------------------------------------- the runs list
    @property
    def watching(self) -> bool:
        """The app follows run directories another process trains (`rnn-tui watch`)."""
        return bool(self.app.settings.watch)

    @property
    def selected_run(self) -> Run | None:
        """The run the runs list's cursor is on."""
        return self.runlist.selected

    @property
    def visible_runs(self) -> list[Run]:
        """What the charts draw, in drawing order (pinned runs last, so on top)."""
        return self.runlist.visible()

    @property
    def run_filter(self) -> str:
        return self.runlist.filter

    def _footer_for_watching(self) -> None:
        """Make room in the footer for the runs keys: training here is still a key away
        (space, f; in the help), just not listed. Edits this screen's own copy of its bindings."""
        table = self._bindings.key_to_bindings
        for key, bindings in list(table.items()):
            table[key] = [dataclasses.replace(b, show=False) if b.action in ("toggle_run", "toggle_form") else b
                          for b in bindings]

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("select_run", "pin_run", "hide_run", "filter_runs"):
            return any(runlist.shown for runlist in self.query(RunList))
        if action in ("stop", "save") and self.watching:
            return any(r.watch is None for r in self.runs)  # only this session's runs train here
        if action == "leave_form":
            return self.focused is not None  # in the footer only while a field has the keys
        return True

    def action_toggle_runlist(self) -> None:
        runlist = self.runlist
        runlist.toggle_class("-hidden")
        if not runlist.shown and runlist.has_focus_within:
            self.set_focus(None)
        runlist.refresh_list()
        self.refresh_bindings()
        self._dirty = True

    def action_select_run(self, delta: int) -> None:
        if self.runlist.move(delta):
            self._selection_changed()

    def action_pin_run(self) -> None:
        self._toggle_selected("pinned")

    def action_hide_run(self) -> None:
        self._toggle_selected("hidden")

    def _toggle_selected(self, flag: str) -> None:
        if self.runlist.toggle(flag) is None:
            self.notify("select a run first (up/down)", severity="warning")
            return
        self._selection_changed(redraw=True)

    def action_filter_runs(self) -> None:
        self.runlist.edit_filter()

    def on_run_list_changed(self, message: RunList.Changed) -> None:
        self._selection_changed(redraw=True)

    def _selection_changed(self, redraw: bool = False) -> None:
        watcher = self.app.watcher
        source = self.runlist.model_source()
        if watcher is not None and source is not None:
            watcher.select_model_run(source.watch)
        self.runlist.refresh_list()
        self._update_status()
        if redraw:
            self.redraw()
            self._update_legend()

    # ---------------------------------------------------------------- teardown
    def on_unmount(self) -> None:
        for run in self.runs:
            if isinstance(run, TrainingRun):
                run.stop.set()
                if run.trainer is not None:
                    run.trainer.request_stop()
