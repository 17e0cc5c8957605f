"""Print every key binding of the app as Markdown tables (pasted into the README).

    python scripts/bindings_md.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.binding import Binding  # noqa: E402

from rnn_tui.app import RnnTuiApp  # noqa: E402


def rows(bindings) -> list[tuple[str, str]]:
    out = []
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        keys = " ".join(f"`{b.key_display or k}`" if b.key_display and i == 0 else f"`{k}`"
                        for i, k in enumerate(b.key.split(",")))
        out.append((keys, b.tooltip or b.description))
    return out


def table(title: str, bindings) -> str:
    lines = [f"**{title}**", "", "| keys | what it does |", "|---|---|"]
    lines += [f"| {k} | {d.replace('|', chr(92) + '|')} |" for k, d in rows(bindings)]
    return "\n".join(lines) + "\n"


def main() -> None:
    palette = Binding(RnnTuiApp.COMMAND_PALETTE_BINDING, "command_palette",
                      tooltip="Command palette: load a model, switch cell, train, save, change sentence, "
                      "run an experiment")
    print(table("Everywhere", [*RnnTuiApp.BINDINGS, palette]))
    for i, (mode, screen) in enumerate(RnnTuiApp.MODES.items(), 1):
        print(table(f"{i} {mode.capitalize()}", getattr(screen, "BINDINGS", [])))


if __name__ == "__main__":
    main()
