"""Screen 4, the sampling console: generate text from a prompt and watch it stream in.

Settings (temperature, top-k, length, seed) change with single keys; ``c`` samples the
same prime and seed at T = 0.2, 0.8 and 1.5 side by side. Every sample goes into the
history with its settings; picking one there shows it again and restores its settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ..widgets.panel import Panel
from .base import LOADING_TEXT, KeyedTask, ModeScreen, Partial, waiting_text
from .keymap import keymap

PRESET_TEMPERATURES = (0.2, 0.8, 1.5)
TOP_K_STEPS = (0, 1, 3, 5, 10, 20, 50)
LENGTH_STEPS = (25, 50, 100, 200, 400, 800, 1600)
T_MIN, T_MAX = 0.1, 3.0
REDRAW_EVERY = 0.1  # seconds between progress messages: <= 10 redraws a second
PRIME_STYLE = Style(color="#8a8a8a")
PRESET_STYLES = ("#5fafff", "#d7d75f", "#ff875f")


@dataclass
class SampleRecord:
    """One sample (or one comparison of three temperatures) and the settings that made it."""

    number: int
    prime: str
    temperatures: tuple[float, ...]
    top_k: int
    length: int
    seed: int
    texts: list[str] = field(default_factory=list)
    done: bool = False
    stopped: bool = False
    tokens_per_s: float = 0.0

    @property
    def compare(self) -> bool:
        return len(self.temperatures) > 1

    def settings_text(self) -> str:
        temps = "/".join(f"{t:.1f}" for t in self.temperatures)
        k = "off" if self.top_k == 0 else str(self.top_k)
        return f"T={temps} top-k {k} len {self.length} seed {self.seed}"


class SamplingScreen(ModeScreen):
    MODE, KEY, LABEL, SHORT = "sampling", "4", "Sampling", "Sample"
    TOOLTIP = "Generate text from a prompt at a chosen temperature"
    FOLLOWS = ("engine_ready", "model_version")
    PANEL_HELP = {
        "prompt": "The text the model reads first (its 'prime'); the sample continues it.\n"
                  "Characters the model does not know are skipped, and you are told which.",
        "output": "The generated text, streaming in token by token (the prime is grey).\n"
                  "Low temperature repeats the likeliest path; high temperature invents.",
        "compare": "Three temperatures, same prime and seed, side by side (c):\n"
                   "T=0.2 is near-greedy, 0.8 plausible, 1.5 close to noise.",
        "history": "Every sample with its settings, newest first.\n"
                   "Highlight one to see it again; enter restores its settings.",
    }
    BINDINGS = keymap("""
        enter,s = ⏎              | sample          | Sample        | sampling.sample    | Sample a continuation of the prompt with the current settings
        c                        | compare         | T 0.2/0.8/1.5 | sampling.compare   | Sample at T = 0.2, 0.8 and 1.5 side by side, same prime and seed
        p                        | edit_prompt     | Prompt        | sampling.prompt    | Edit the prompt (enter samples, escape leaves it)
        left_square_bracket = [  | temperature(-1) | T-            | sampling.colder    | Temperature down by 0.1
        right_square_bracket = ] | temperature(1)  | T+            | sampling.hotter    | Temperature up by 0.1
        k                        | top_k(1)        | Top-k         | sampling.topk_up   | Top-k: cycle off, 1, 3, 5, 10, 20, 50 (K goes back)
        K                        | top_k(-1)       | -Top-k back   | sampling.topk_down | Top-k: previous setting
        plus,equals_sign = +     | length(1)       | -Longer       | sampling.longer    | Sample more tokens (doubles the length)
        minus                    | length(-1)      | -Shorter      | sampling.shorter   | Sample fewer tokens (halves the length)
        r                        | reseed          | -Seed         | sampling.reseed    | Draw a new random seed (the seed also advances after every sample)
        ctrl+c                   | stop !          | -Stop         | sampling.stop      | Stop the running sample
        escape                   | stop_or_leave   | -Stop         | sampling.escape    | Stop the running sample, or leave the prompt
        """)

    def __init__(self) -> None:
        super().__init__()
        self.temperature = 0.8
        self.top_k = 0
        self.length = 200
        self.seed = 0
        self.history: list[SampleRecord] = []
        self.shown: SampleRecord | None = None
        self.running: SampleRecord | None = None
        self._count = 0

    # ---------------------------------------------------------------- compose
    def compose_body(self) -> ComposeResult:
        with Vertical(id="sampling-body"):
            with Horizontal(id="prompt-row"):
                yield Static("prompt ›", id="prompt-label")
                yield Input(id="prompt", placeholder="(empty: the model starts from nothing)", compact=True)
            yield Static("", id="sampling-settings")
            yield Panel(self._build_output, id="sampling-output")
            yield Static("history", id="history-title")
            yield OptionList(id="sampling-history")
            yield Static(LOADING_TEXT, id="sampling-loading")

    def on_mount(self) -> None:
        prompt = self.query_one("#prompt", Input)
        prompt.cursor_blink = self.app.settings.cursor_blink
        prompt.value = self._default_prompt()
        # one sample at a time, keyed by its number: progress, then the finished texts
        self.sampler = KeyedTask(self, "sample", self._compute, self._deliver, self._failed)
        self._show_settings()
        self.set_focus(None)

    def show_waiting(self, text: str | None) -> None:
        loading = self.query_one("#sampling-loading", Static)
        if text is not None:
            loading.update(text)
        loading.display = text is not None
        self._show_settings()

    def _default_prompt(self) -> str:
        words = self.app.sentence.split()
        return " ".join(words[:2]) if words else ""

    # -------------------------------------------------------------- settings
    def _show_settings(self) -> None:
        k = "off" if self.top_k == 0 else str(self.top_k)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (name, value) in enumerate((("T", f"{self.temperature:.1f}"), ("top-k", k),
                                           ("length", str(self.length)), ("next seed", str(self.seed)))):
            if i:
                text.append("  ·  ", style="#5f5f5f")
            text.append(f"{name} ", style="#8a8a8a")
            text.append(value, style="bold")
        run = self.running
        if run is not None:
            text.append("   sampling… ", style="bold #ffaf00")
            text.append("ctrl+c stops", style="#8a8a8a")
        elif self.shown is not None and self.shown.done:
            state = "stopped" if self.shown.stopped else "done"
            n = len(self.shown.texts)
            what = f"{n} temperatures" if n > 1 else f"{self.shown.length} tokens"
            text.append(f"   #{self.shown.number} {state} · {what}", style="#8a8a8a")
        self.query_one("#sampling-settings", Static).update(text)

    def action_temperature(self, direction: int) -> None:
        t = round(self.temperature + 0.1 * direction, 1)
        if not T_MIN <= t <= T_MAX:
            self.notify(f"temperature runs from {T_MIN:g} to {T_MAX:g}", timeout=2)
            return
        self.temperature = t
        self._show_settings()

    def action_top_k(self, direction: int) -> None:
        i = TOP_K_STEPS.index(self.top_k) if self.top_k in TOP_K_STEPS else 0
        self.top_k = TOP_K_STEPS[(i + direction) % len(TOP_K_STEPS)]
        self._show_settings()

    def action_length(self, direction: int) -> None:
        i = LENGTH_STEPS.index(self.length) if self.length in LENGTH_STEPS else 3
        j = i + direction
        if not 0 <= j < len(LENGTH_STEPS):
            end = "longest" if j > 0 else "shortest"
            self.notify(f"{self.length} tokens is the {end} length here", timeout=2)
            return
        self.length = LENGTH_STEPS[j]
        self._show_settings()

    def action_reseed(self) -> None:
        import random

        self.seed = random.randrange(10_000)
        self._show_settings()

    def action_edit_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.running is not None  # otherwise ctrl+c does what it does elsewhere
        return True

    # -------------------------------------------------------------- sampling
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_focus(None)
        self.action_sample()

    def action_sample(self) -> None:
        self._start((self.temperature,))

    def action_compare(self) -> None:
        self._start(PRESET_TEMPERATURES)

    def _start(self, temperatures: tuple[float, ...]) -> None:
        app = self.app
        waiting = waiting_text(app)
        if waiting:
            self.notify(waiting, severity="warning", markup=False)
            return
        prompt = self.query_one("#prompt", Input)
        prime = prompt.value
        if prime.strip():
            fitted = self.fit_text(prime, "prompt", squash=False)
            if fitted is None:
                return
            if fitted != prime:
                prompt.value = prime = fitted  # the prompt shows what the model reads
        if self.running is not None:  # a new sample replaces the running one, which stops here
            self._close(self.running, stopped=True)
        self._count += 1
        record = SampleRecord(self._count, prime, tuple(temperatures), self.top_k, self.length,
                              self.seed, texts=[""] * len(temperatures))
        self.running = record
        self.shown = record
        self.seed += 1  # the next sample differs; the history keeps this one's seed
        self._show_settings()
        self.query_one("#sampling-output").refresh()
        self.sampler.request(record.number, app.lm, record)

    def _compute(self, lm, record: SampleRecord):
        """Worker thread: the texts so far every REDRAW_EVERY seconds, then the finished ones."""
        from ..engine.sampling import sample_stream

        worker = get_current_worker()
        streams = [
            sample_stream(lm, record.prime, temperature=t, top_k=record.top_k,
                          length=record.length, seed=record.seed)
            for t in record.temperatures
        ]
        texts = [""] * len(streams)
        alive = [True] * len(streams)
        start = last = time.perf_counter()
        count = 0
        try:
            while any(alive):
                if worker.is_cancelled:
                    return
                for i, stream in enumerate(streams):
                    if alive[i]:
                        try:
                            texts[i] += next(stream)
                            count += 1
                        except StopIteration:
                            alive[i] = False
                now = time.perf_counter()
                if now - last >= REDRAW_EVERY:
                    last = now
                    yield Partial(("progress", tuple(texts), count / (now - start)))
        finally:
            for stream in streams:
                stream.close()
        elapsed = time.perf_counter() - start
        yield ("done", tuple(texts), count / elapsed if elapsed > 0 else 0.0)

    def _deliver(self, number: int, value) -> None:
        run = self.running
        if run is None or run.number != number:
            return
        kind, texts, rate = value
        run.texts, run.tokens_per_s = list(texts), rate
        if kind == "done":
            self._close(run, stopped=False)
        else:
            self.query_one("#sampling-output").refresh()

    def _close(self, run: SampleRecord, stopped: bool) -> None:
        """The sample is over (done, or stopped with what it had): into the history."""
        run.done, run.stopped = True, stopped
        if self.running is run:
            self.running = None
        self.history.insert(0, run)
        self._refresh_history()
        if stopped:
            self.notify("sample stopped", timeout=2)
        self._show_settings()
        self.query_one("#sampling-output").refresh()

    def _failed(self, number: int, error: BaseException) -> None:
        if self.running is not None and self.running.number == number:
            self.running = None
            self._show_settings()

    def action_stop(self) -> None:
        if self.running is not None:
            self.sampler.cancel()
            self._close(self.running, stopped=True)

    def action_stop_or_leave(self) -> None:
        if self.running is not None:
            self.action_stop()
        elif self.focused is not None:
            self.set_focus(None)

    # --------------------------------------------------------------- history
    def _refresh_history(self) -> None:
        options = self.query_one("#sampling-history", OptionList)
        options.clear_options()
        for rec in self.history:
            first = " | ".join(t.replace("\n", " ⏎ ")[:40] for t in rec.texts)[:120]
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(f"#{rec.number} ", style="bold")
            label.append(rec.settings_text(), style="#8a8a8a")
            label.append("  " + rec.prime, style=PRIME_STYLE)
            label.append(first)
            options.add_option(Option(label, id=f"sample-{rec.number}"))
        if self.history:
            options.highlighted = 0

    def _record_for(self, option_id: str | None) -> SampleRecord | None:
        for rec in self.history:
            if option_id == f"sample-{rec.number}":
                return rec
        return None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        rec = self._record_for(event.option.id)
        if rec is not None and self.running is None:
            self.shown = rec
            self._show_settings()
            self.query_one("#sampling-output").refresh()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        rec = self._record_for(event.option.id)
        if rec is None:
            return
        self.query_one("#prompt", Input).value = rec.prime
        if not rec.compare:
            self.temperature = rec.temperatures[0]
        self.top_k, self.length, self.seed = rec.top_k, rec.length, rec.seed
        self.notify(f"settings of #{rec.number} restored: enter samples it again", timeout=3)
        self._show_settings()

    # ------------------------------------------------------------- rendering
    def _build_output(self, width: int, height: int) -> RenderableType:
        rec = self.shown
        if rec is None:
            return Text.from_markup(
                "[b]enter[/] samples a continuation of the prompt · [b]c[/] compares "
                "T = 0.2 / 0.8 / 1.5\n[b]p[/] edits the prompt · [b][ ][/] temperature · "
                "[b]k[/] top-k · [b]- +[/] length · [b]r[/] new seed",
                style="#8a8a8a",
            )
        if not rec.compare:
            return _tail(_passage(rec.prime, rec.texts[0], None), width, height)
        n = len(rec.temperatures)
        gap = 1
        col_w = max(8, (width - gap * (n - 1)) // n)
        columns = []
        for i, t in enumerate(rec.temperatures):
            head = Text(f"T = {t:.1f}", style=f"bold {PRESET_STYLES[i % 3]}", no_wrap=True)
            body = _tail(_passage(rec.prime, rec.texts[i], PRESET_STYLES[i % 3]), col_w, height - 1)
            columns.append((head, body))
        from rich.table import Table

        table = Table.grid(padding=(0, gap, 0, 0), expand=True)
        for _ in range(n):
            table.add_column(ratio=1, overflow="fold")
        table.add_row(*(h for h, _ in columns))
        table.add_row(*(b for _, b in columns))
        return table


def _passage(prime: str, text: str, colour: str | None) -> Text:
    out = Text()
    out.append(prime, style=PRIME_STYLE)
    out.append(text, style=Style(color=colour, bold=colour is None) if colour else Style(bold=True))
    return out


def _tail(text: Text, width: int, height: int) -> Text:
    """The last ``height`` lines of the text wrapped to ``width``: the newest tokens stay visible."""
    from rich.console import Console

    lines = text.wrap(Console(width=max(1, width), legacy_windows=False), max(1, width))
    if len(lines) > height:
        lines = lines[len(lines) - height:]
    out = Text()
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        out.append_text(line)
    return out
