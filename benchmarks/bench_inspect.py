"""Unit inspector figures: encoding tinyshakespeare, searching it, attribution.

    python benchmarks/bench_inspect.py [--model lstm] [--tokens N] [--repeat 5]

Uses the bundled model (28-character lowercase alphabet: the text is lowercased and other
characters are skipped) and /work/shared/data/tinyshakespeare.txt. Prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnn_tui.engine import probes  # noqa: E402
from rnn_tui.engine.checkpoint import load_model  # noqa: E402
from rnn_tui.engine.attribution import attribution  # noqa: E402
from rnn_tui.engine.units import (  # noqa: E402
    encode_corpus_states, find_matches, select_units, trace_values,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
QUERIES = [  # sentence, span (end exclusive), value
    ("first citizen: before we proceed any further, hear me speak.", (6, 13), "hidden"),
    ("you are all resolved rather to die than to famish?", (8, 11), "hidden"),
    ("what authority surfeits on would relieve us", (5, 14), "cell"),
]


def timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--tokens", type=int, default=None, help="cap on corpus tokens")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not DATA.is_file():
        print(f"{DATA} is absent: nothing to measure")
        return 0
    lm = load_model(args.model, "cpu")
    text = DATA.read_text(encoding="utf-8")
    print(f"model: {lm.label}; corpus: {DATA.name}, {len(text):,} chars; "
          f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads by default")

    # ---------------------------------------------------------------- encoding
    print("\nencode_corpus_states (uint8, 256 streams, warmup 128, chunks of 128 steps)")
    print(f"{'value':<8}{'threads':>8}{'tokens':>11}{'seconds':>9}{'k tok/s':>9}{'MiB':>7}{'widened':>9}")
    states = {}
    for value in ("hidden", "cell", "f"):
        for threads in (1, None):
            if threads is None and value != "hidden":
                continue
            st = encode_corpus_states(lm, text, value=value, max_tokens=args.tokens, threads=threads)
            states.setdefault(value, st)
            print(f"{value:<8}{threads or torch.get_num_threads():>8}{st.n_tokens:>11,}{st.seconds:>9.2f}"
                  f"{st.n_tokens / st.seconds / 1e3:>9.0f}{st.nbytes / 2**20:>7.1f}{st.widened:>9}")
    # One token at a time through stepwise, batch 1 (what probes.trace does), extrapolated.
    ids = torch.as_tensor(lm.encode(text[:3000].lower()).ids[:2000])[None]
    with torch.no_grad():
        t = time.perf_counter()
        lm.model.stepwise(ids)
        per = (time.perf_counter() - t) / ids.shape[1]
    n = states["hidden"].n_tokens
    print(f"reference: stepwise at batch 1 takes {per * 1e6:.0f} us/token -> {per * n:.0f} s for {n:,} tokens")

    # How far the streams' warmup leaves positions from one exact pass over the text.
    head = min(n, 100_000)
    exact = encode_corpus_states(lm, text, max_tokens=head, streams=1, chunk=4096,
                                 storage="float32", threads=1)
    for warm in (32, 128):
        par = encode_corpus_states(lm, text, max_tokens=head, streams=64, warmup=warm,
                                   storage="float32", threads=1)
        d = np.abs(par.data - exact.data)
        print(f"warmup {warm:>3}: 64 streams vs one pass over {head:,} tokens, hidden: max |diff| "
              f"{d.max():.2g}, mean {d.mean():.2g}, positions off by > 0.05: {(d.max(1) > 0.05).mean():.3%}")

    # ---------------------------------------------------------------- search
    print(f"\nfind_matches over {n:,} tokens (median of {args.repeat})")
    print(f"{'query':<12}{'value':<8}{'thr':>5}{'off':>6}{'units':>6}{'runs':>8}{'ms':>8}  best match")
    for sentence, span, value in QUERIES:
        tr = probes.trace(lm, sentence)
        vals = trace_values(tr, value)
        st = states[value]
        for thr in (0.3, 0.5) if value == "hidden" else (1.0,):
            for off in (False, True):
                units = select_units(vals, span, thr, off_outside=off)
                if units.size == 0:
                    print(f"{sentence[span[0]:span[1]]!r:<12}{value:<8}{thr:>5}{off!s:>6}     0  (no unit)")
                    continue
                sec, res = timed(lambda: find_matches(st, units, thr, span[1] - span[0],
                                                      off_outside=off), args.repeat)
                best = ""
                if res.matches:
                    m = res.matches[0]
                    best = (f"{m.snippet[max(0, m.mark_start - 12):m.mark_start]}[{m.snippet[m.mark_start:m.mark_end]}]"
                            f"{m.snippet[m.mark_end:m.mark_end + 12]}  score {m.score}")
                print(f"{sentence[span[0]:span[1]]!r:<12}{value:<8}{thr:>5}{off!s:>6}{units.size:>6}"
                      f"{res.total:>8}{sec * 1e3:>8.1f}  {best}")

    # Worst cases: runs covering most of the corpus, so the run pass reads every position.
    st = states["hidden"]
    for label, units, thr in (("1 unit", np.array([0]), -0.5), ("all 64", np.arange(64), -1.0)):
        sec, res = timed(lambda: find_matches(st, units, thr, 1), args.repeat)
        covered = sum(m.length for m in res.matches)
        print(f"{label:<12}{'hidden':<8}{thr:>5}{'False':>6}{units.size:>6}{res.total:>8}{sec * 1e3:>8.1f}"
              f"  (top {len(res.matches)} runs cover {covered:,} positions)")

    # ---------------------------------------------------------------- attribution
    print(f"\nattribution (median of {args.repeat})")
    sentence = ("first citizen: before we proceed any further, hear me speak. all: speak, speak. "
                "first citizen: you are all resolved rather to die than to famish? all: resolved. ")
    torch.set_num_threads(1)
    for size in (200, 1000):
        text_n = (sentence * (size // len(sentence) + 1))[:size]
        for method in ("grad_x_input", "occlusion"):
            sec, att = timed(lambda: attribution(lm, text_n, method=method), args.repeat)
            print(f"{method:<13} {len(att.tokens):>5} tokens: {sec * 1e3:>6.0f} ms  (1 thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
