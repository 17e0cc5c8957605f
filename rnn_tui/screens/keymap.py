"""Key bindings written as a table, one key a line, parsed into Textual `Binding`s.

    BINDINGS = keymap('''
        left,h = ←    | step(-1)   | Prev   | stepper.prev   | Step back one token
        home          | jump(0)    | -First | stepper.first  | Jump to the first token
        ctrl+c        | stop !     | -Stop  | sampling.stop  | Stop the running sample
    ''')

The five columns, split at " | ": the keys (comma separated; `= X` shows X in the footer
instead of the key's name), the action (a trailing `!` makes it a priority binding, ahead of
the focused widget), the footer label (a leading `-` keeps it out of the footer: it is in the
help), the binding's id, and its tooltip (what `?` says about it).
"""

from __future__ import annotations

from textual.binding import Binding


def keymap(table: str) -> list[Binding]:
    out = []
    for n, line in enumerate(table.strip().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ", 4)]
        if len(parts) != 5:
            raise ValueError(f"keymap line {n}: expected 5 columns split by ' | ', got {line!r}")
        keys, action, label, ident, tooltip = parts
        keys, _, display = (k.strip() for k in keys.partition("="))
        priority = action.endswith("!")
        action = action.rstrip("!").strip()
        show = not label.startswith("-")
        out.append(Binding(keys, action, label.lstrip("-"), show=show, key_display=display or None,
                           priority=priority, id=ident, tooltip=tooltip))
    return out
