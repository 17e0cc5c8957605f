"""One rule for text a person types, on every screen and on the command line.

Whitespace runs become one space (unless not `squash`: a prompt's trailing space matters to
what comes next); a character model that never saw a capital letter reads 'Hello' as 'hello'
(not 'ello'); characters it cannot read are named (the probes skip them). When it can read
none of the text the result is None and the caller keeps what it had.
"""

from __future__ import annotations

LOWERCASED = "lowercased: this model's vocabulary has no capital letters"


def fit_text(vocab, text: str, what: str = "text", squash: bool = True) -> tuple[str | None, list[tuple[str, str]]]:
    """(the text as the model will read it, or None; [(severity, note), ...]) for ``vocab``
    (None: no model yet, the text is only tidied)."""
    if squash:
        text = " ".join(text.split())
    notes: list[tuple[str, str]] = []
    if vocab is None or not text:
        return text, notes
    if text != text.lower() and vocab.reads_lowercase_only:
        notes.append(("information", LOWERCASED))
        text = text.lower()
    try:
        enc = vocab.encode(text, on_unknown="skip")
    except Exception:  # noqa: BLE001 - a vocabulary that cannot even skip: the probes will say why
        return text, notes
    if len(enc.ids) == 0:
        notes.append(("error", f"the model can read none of this {what}, so it stays as it was: "
                               f"{enc.message() or 'empty'}"))
        return None, notes
    if enc.message():
        notes.append(("warning", enc.message()))
    return text, notes
