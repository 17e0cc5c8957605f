"""One rule for text a person types, on every screen and on the command line.

Whitespace runs become one space (unless not `squash`: a prompt's trailing space matters to
what comes next); a character model that never saw a capital letter reads 'Hello' as 'hello'
(not 'ello'); characters it cannot read are named (the probes skip them). When it can read
none of the text the result is None and the caller keeps what it had. A text longer than the
probes take (``fit_sentence``'s limit) is refused the same way, with the end of it that fits
offered instead.
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


def fit_sentence(vocab, text: str, what: str, limit: int) -> tuple[str | None, list[tuple[str, str]], str | None]:
    """``fit_text`` for a text the probes read whole, at most `limit` tokens: (the text or None,
    notes, the end of it holding its last `limit` tokens when it is longer, else None). A text
    over the limit is refused (None): the caller keeps what it had and may offer the end."""
    fitted, notes = fit_text(vocab, text, what)
    if fitted is None or vocab is None:
        return fitted, notes, None
    try:
        n = len(vocab.encode(fitted, on_unknown="skip").ids)
    except Exception:  # noqa: BLE001 - as in fit_text: the probes will say why
        return fitted, notes, None
    if n <= limit:
        return fitted, notes, None
    notes = [note for note in notes if note[0] == "information"]
    message = (f"the {what} is {n:,} tokens, more than the {limit:,} the screens read, so the current "
               f"one stays: the editor now holds its last {limit:,} tokens (enter reads them, escape "
               f"leaves things as they are)")
    notes.append(("error", message))
    return None, notes, vocab.tail(fitted, limit).lstrip()  # (a leading space would be squashed away)
