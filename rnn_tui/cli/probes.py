"""The commands that read one model: sample, trace, grads, jacobian and info.

Each loads a run directory or a bundled model and prints text, or JSON with --json.
"""

from __future__ import annotations

import sys

from .output import dump, warn


def cmd_sample(args) -> int:
    from ..engine.checkpoint import load_model
    from ..engine.errors import ConfigError
    from ..engine.sampling import sample_stream

    if args.greedy and args.temperature != 0.8:
        warn("--greedy takes the likeliest token: --temperature is ignored")
    elif not args.greedy and args.temperature <= 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature:g} (--greedy takes the likeliest token)")
    lm = load_model(args.model, device=args.device)
    unknown = [c for c in lm.vocab.split(args.prime) if c not in lm.vocab.tokens] if args.prime else []
    if unknown:
        warn(lm.vocab.encode(args.prime, on_unknown="skip").message())
    sys.stdout.write(args.prime)
    for piece in sample_stream(lm, prime=args.prime, temperature=args.temperature, top_k=args.top_k,
                               length=args.length, seed=args.seed, greedy=args.greedy):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def _fmt_tok(tok: str) -> str:
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(tok, tok)


def cmd_trace(args) -> int:
    from ..engine.checkpoint import load_model
    from ..engine.probes import trace

    lm = load_model(args.model, device=args.device)
    tr = trace(lm, args.text, top_k=args.top_k)
    warn(tr.unknown_message)
    if args.json:
        dump(tr.to_json())
        return 0
    print(f"{lm.label}: {len(tr.tokens)} tokens, mean loss {tr.mean_loss:.3f} nats")
    print(f"{'t':>3} {'tok':>4} {'next':>4} {'p(next)':>8} {'loss':>6}  top-{min(args.top_k, len(lm.vocab.tokens))}")
    for t, tok in enumerate(tr.tokens):
        nxt = tr.next_ids[t]
        nxt_tok = _fmt_tok(lm.vocab.tokens[nxt]) if nxt >= 0 else ""
        p = f"{tr.next_prob[t]:.3f}" if nxt >= 0 else ""
        loss = f"{tr.next_loss[t]:.2f}" if nxt >= 0 else ""
        top = " ".join(f"{_fmt_tok(s)}:{q:.2f}" for s, q in zip(tr.topk_tokens[t], tr.topk_probs[t]))
        print(f"{t:>3} {_fmt_tok(tok):>4} {nxt_tok:>4} {p:>8} {loss:>6}  {top}")
    return 0


def cmd_grads(args) -> int:
    from ..engine.checkpoint import load_model
    from ..engine.probes import gradient_profile

    lm = load_model(args.model, device=args.device)
    gp = gradient_profile(lm, args.text, mode=args.mode)
    warn(gp.unknown_message)
    if args.json:
        dump(gp.to_json())
        return 0
    print(f"{lm.label}: |dL/dh_t| and |dL/dx_t| for the loss at {'the last step' if args.mode == 'last' else 'every step'}")
    top = gp.dh[-1]
    for t, tok in enumerate(gp.tokens):
        if not gp.affects_loss[t]:  # read after the last prediction: no loss depends on it
            flag = "  (feeds no loss: 0 by construction)"
        else:
            flag = "  (underflow: exactly 0)" if gp.underflow_h[-1][t] else ""
        print(f"{t:>3} {_fmt_tok(tok):>4}  dh {top[t]:.3e}  dx {gp.dx[t]:.3e}{flag}")
    print(gp.describe())
    return 0


def cmd_jacobian(args) -> int:
    from ..engine.checkpoint import load_model
    from ..engine.probes import jacobian_map, spectrum

    from ..engine.errors import ConfigError

    rows = args.rows
    if rows is not None and rows != "all":
        if not rows.isdigit() or int(rows) < 1:
            raise ConfigError(f"--rows takes a number of rows or 'all', got {rows!r}")
        rows = int(rows)
    lm = load_model(args.model, device=args.device)
    jm = jacobian_map(lm, args.text, layer=args.layer, method=args.method, rows=rows, probes=args.probes,
                      exact_last=True if args.exact_last else None, seed=args.seed)
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
    from ..engine.checkpoint import describe, load_model

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
