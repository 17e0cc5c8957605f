"""The commands that read one model: sample, trace, grads, jacobian and info.

Each loads a run directory or a bundled model and prints text, or JSON with --json.
"""

from __future__ import annotations

import sys

from .output import dump, warn


def load(args):
    """The model the command reads, with torch's CPU threads chosen for its size (--threads)."""
    from ..engine.checkpoint import load_model
    from ..engine.threads import apply_threads, choose_threads

    lm = load_model(args.model, device=getattr(args, "device", "cpu"))
    c = lm.config
    apply_threads(choose_threads(c.hidden, 1, c.cell, requested=getattr(args, "threads", None)))
    return lm


def cmd_sample(args) -> int:
    from ..engine.errors import ConfigError, VocabError
    from ..engine.sampling import sample_stream
    from ..engine.textfit import fit_text

    if args.greedy and args.temperature != 0.8:
        warn("--greedy takes the likeliest token: --temperature is ignored")
    elif not args.greedy and args.temperature <= 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature:g} (--greedy takes the likeliest token)")
    lm = load(args)
    prime = args.prime
    if prime:  # the TUI's rule: 'The Cat' reads as 'the cat' for a lowercase model; unknowns named
        prime, notes = fit_text(lm.vocab, prime, "prompt", squash=False)
        for severity, note in notes:
            if severity == "error":
                raise VocabError(note)
            warn(note)
    sys.stdout.write(prime)
    for piece in sample_stream(lm, prime=prime, temperature=args.temperature, top_k=args.top_k,
                               length=args.length, seed=args.seed, greedy=args.greedy):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _fmt_tok(tok: str) -> str:
    """A token on one line of a table (a space, a line break, a tab as glyphs; any other
    character that is not printable, such as a byte-level piece's "\\r\\n" or ESC, as "·")."""
    from ..render.heatmap import token_label

    return token_label(tok)


def _windowed(probe, *args, window: int | None = None, **kwargs):
    """Run a probe on the last `window` tokens; a text over its limit says which --window fits."""
    from ..engine.errors import ProbeLimitError

    try:
        result = probe(*args, window=window, **kwargs)
    except ProbeLimitError as exc:
        if exc.fit is None:
            raise
        raise ProbeLimitError(f"{exc} (--window {exc.fit})", fit=exc.fit) from None
    if result.offset:
        warn(f"--window {window}: read the last {len(result.tokens):,} tokens (the first {result.offset:,} "
             f"were left out)")
    return result


def _text(args) -> str:
    """The text a probe reads: the positional TEXT, or --sentence TEXT (the TUI's name for it)."""
    from ..engine.errors import ConfigError

    if args.text is not None and args.sentence is not None:
        raise ConfigError("give the text once: as TEXT or as --sentence TEXT, not both")
    text = args.text if args.text is not None else args.sentence
    if text is None:
        raise ConfigError(f"give the text to read: rnn-tui {args.command} MODEL 'the cat sat' "
                          "(or --sentence TEXT)")
    return text


def cmd_trace(args) -> int:
    from ..engine.probes import trace, verb_agreement

    lm = load(args)
    tr = _windowed(trace, lm, _text(args), top_k=args.top_k, window=args.window)
    warn(tr.unknown_message)
    va = verb_agreement(lm, _text(args), window=args.window)
    if args.json:
        data = tr.to_json()
        data["agreement"] = va.to_json() if va is not None else None
        dump(data)
        return 0
    print(f"{lm.label}: {len(tr.tokens)} tokens, mean loss {tr.mean_loss:.3f} nats")
    toks = [_fmt_tok(tok) for tok in tr.tokens]
    w = max([4, *map(len, toks)])  # words and pieces: the columns as wide as the longest
    t_w = max(3, len(str(len(toks) - 1)))
    print(f"{'t':>{t_w}} {'tok':>{w}} {'next':>{w}} {'p(next)':>8} {'loss':>6}  "
          f"top-{min(args.top_k, len(lm.vocab.tokens))}")
    for t, tok in enumerate(toks):
        nxt = tr.next_ids[t]
        nxt_tok = _fmt_tok(lm.vocab.shown[nxt]) if nxt >= 0 else ""
        p = f"{tr.next_prob[t]:.3f}" if nxt >= 0 else ""
        loss = f"{tr.next_loss[t]:.2f}" if nxt >= 0 else ""
        # "tok 0.44", two spaces apart: a token ":" never reads as part of the number.
        top = "  ".join(f"{_fmt_tok(s)} {q:.2f}" for s, q in zip(tr.topk_tokens[t], tr.topk_probs[t]))
        print(f"{t:>{t_w}} {tok:>{w}} {nxt_tok:>{w}} {p:>8} {loss:>6}  {top}")
    if va is not None:
        print(f"agreement at the verb: {va.describe()}")
    return 0


def cmd_grads(args) -> int:
    from ..engine.probes import MODE_WORDS, gradient_profile, loss_mode_for

    lm = load(args)
    mode = loss_mode_for(lm, _text(args), args.mode)
    gp = _windowed(gradient_profile, lm, _text(args), mode=mode, window=args.window)
    warn(gp.unknown_message)
    if args.json:
        dump(gp.to_json())
        return 0
    what = "|dL/dh_t|, |dL/dc_t| (the cell state)" if gp.dc is not None else "|dL/dh_t|"
    print(f"{lm.label}: {what} and |dL/dx_t| for the loss at {MODE_WORDS[mode]}")
    top = gp.dh[-1]
    for t, tok in enumerate(gp.tokens):
        if not gp.affects_loss[t]:  # read after the last prediction: no loss depends on it
            flag = "  (feeds no loss: 0 by construction)"
        else:
            flag = "  (underflow: exactly 0)" if gp.underflow_h[-1][t] else ""
            if t == gp.position:
                flag += "  <- the loss's prediction"
            elif t == gp.subject:
                flag += f"  <- just after the subject {gp.subject_word!r}"
        dc = f"  dc {gp.dc[-1][t]:.3e}" if gp.dc is not None else ""
        print(f"{t:>3} {_fmt_tok(tok):>4}  dh {top[t]:.3e}{dc}  dx {gp.dx[t]:.3e}{flag}")
    print(gp.describe())
    return 0


def cmd_jacobian(args) -> int:
    from ..engine.probes import jacobian_map, spectrum

    from ..engine.errors import ConfigError

    rows = args.rows
    if rows is not None and rows != "all":
        if not rows.isdigit() or int(rows) < 1:
            raise ConfigError(f"--rows takes a number of rows or 'all', got {rows!r}")
        rows = int(rows)
    lm = load(args)
    jm = _windowed(jacobian_map, lm, _text(args), layer=args.layer, method=args.method, rows=rows, probes=args.probes,
                   exact_last=True if args.exact_last else None, seed=args.seed, window=args.window)
    sp = spectrum(lm, layer=args.layer)
    warn(jm.unknown_message)
    if args.json:
        data = jm.to_json()
        data["spectrum"] = sp.to_json()
        dump(data)
        return 0
    print(f"{lm.label}: ||d state_t / d state_k|| (Frobenius), state = {jm.state}")
    T = len(jm.tokens)
    print(f"method: {jm.describe_method()}; the last row (t = T) is {jm.row_method(T - 1)}")
    last = jm.norms[-1]
    for k, tok in enumerate(jm.tokens):
        note = "  (k = T: the identity, sqrt of the state size)" if k == T - 1 else ""
        print(f"k={k:>3} {_fmt_tok(tok):>4}  ||d state_T / d state_k|| = {last[k]:.3e}{note}")
    radii = ", ".join(f"{name}: {r:.3f}" for name, r in sp.radius.items())
    print(f"spectral radius of the recurrent matrix ({sp.main} block drives the state): {radii}")
    return 0


def cmd_info(args) -> int:
    from ..engine.checkpoint import load_model
    from ..engine.info import describe

    lm = load_model(args.model, device="cpu")
    info = describe(lm)
    if args.json:
        dump(info)
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
        print(f"{key:<{width}}  {_short(value)}")
    return 0


def _short(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return v
