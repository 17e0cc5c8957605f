"""`AppSettings`: everything the app is started with, in one typed, frozen object.

The command line builds one (`rnn-tui`, `rnn-tui watch`, `rnn-tui serve`), tests build one
with the few fields they change; nothing else sets app state from outside::

    RnnTuiApp(AppSettings(model="runs/x", device="cpu"))
    RnnTuiApp(lm=tiny_model, runs_dir=tmp_path, watch_poll_s=0.05)   # fields as keywords
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

DEFAULT_MODEL = "lstm"
DEFAULT_SENTENCE = "the cat that we saw yesterday was happy"


@dataclass(frozen=True)
class AppSettings:
    model: str | None = None  # run directory, its config.json, or a bundled name (default: lstm)
    corpus: str | None = None  # what the training screen trains on (bundled name or text file)
    device: str = "auto"
    threads: int | None = None  # torch's CPU threads (None: engine.threads chooses)
    sentence: str = DEFAULT_SENTENCE  # what the stepper, gradients and dynamics read
    mode: str | None = None  # the first screen (watch opens on "training")
    watch: tuple[str, ...] = ()  # run directories another process trains
    watch_roots: tuple[str, ...] = ()  # folders where new runs are looked for while watching
    watch_poll_s: float = 0.5  # how often watched runs are read
    runs_dir: Path = Path("runs")  # where the training screen saves runs
    # TrainConfig fields the training form starts from (and fields it does not show).
    train_defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    cursor_blink: bool = True  # False keeps snapshots still
    start_engine: bool = True  # False holds the boot worker until app.start_engine() (tests)
    watch_css: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "watch", tuple(str(d) for d in self.watch))
        object.__setattr__(self, "watch_roots", tuple(str(d) for d in self.watch_roots))
        object.__setattr__(self, "runs_dir", Path(self.runs_dir))
        object.__setattr__(self, "train_defaults", MappingProxyType(dict(self.train_defaults)))
        object.__setattr__(self, "sentence", " ".join(str(self.sentence or DEFAULT_SENTENCE).split())
                           or DEFAULT_SENTENCE)
        object.__setattr__(self, "device", self.device or "auto")

    @property
    def watching(self) -> bool:
        return bool(self.watch or self.watch_roots)

    def with_(self, **changes: Any) -> "AppSettings":
        """A copy with some fields changed (unknown names are a TypeError, as for the class)."""
        return replace(self, **changes)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))
