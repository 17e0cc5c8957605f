"""Print every key binding of the app as Markdown tables (pasted into the README).

    python scripts/bindings_md.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.binding import Binding  # noqa: E402

from rnn_tui.app import RnnTuiApp  # noqa: E402


# Textual's key names, as a reader would type them.
KEY_NAMES = {"comma": ",", "minus": "-", "full_stop": ".", "plus": "+", "equals_sign": "=",
             "left_square_bracket": "[", "right_square_bracket": "]", "question_mark": "?",
             "slash": "/", "up": "↑", "down": "↓", "left": "←", "right": "→"}


def rows(bindings) -> list[tuple[str, str]]:
    out = []
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        names = [KEY_NAMES.get(k.strip(), k.strip()) for k in b.key.split(",")]
        if b.key_display and b.key_display not in names:
            names[0] = b.key_display
        keys = " ".join(f"`{k}`" for k in dict.fromkeys(names))
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
