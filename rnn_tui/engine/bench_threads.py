"""`rnn-tui bench`'s CPU-threads rows: training speed with torch's default thread count, with the
count `engine.threads` chooses, and with one thread, alone and next to a busy neighbour process.

The neighbour is a second Python process spinning on one core for the duration of the measure,
as a second job or a test suite would on a shared machine. Every figure is measured here.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Callable

import torch

from .corpus import load_corpus
from .threads import choose_threads
from .train import TrainConfig, Trainer

_SPIN = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    pass\n"


def _tokens_per_s(config: TrainConfig, corpus, threads: int, steps: int, warmup: int) -> float:
    torch.set_num_threads(threads)
    marks: dict[int, float] = {}

    def on_metrics(m):
        if m.step in (warmup, warmup + steps):
            marks[m.step] = time.perf_counter()

    Trainer(config, corpus=corpus, on_metrics=on_metrics).run()
    return steps * config.batch * config.seq_len / (marks[warmup + steps] - marks[warmup])


def bench_threads(hidden: int = 64, batch: int = 32, steps: int = 30, warmup: int = 3, rounds: int = 3,
                  log: Callable[[str], None] = print) -> list[dict]:
    default = torch.get_num_threads()  # torch's own choice: every core it sees
    chosen = choose_threads(hidden, batch, "lstm").threads
    config = TrainConfig(corpus="grammar", cell="lstm", hidden=hidden, batch=batch, seq_len=64,
                         steps=warmup + steps, eval_every=10**9, device="cpu", seed=0)
    corpus = load_corpus("grammar")
    settings = [(f"torch default ({default})", default), (f"chosen ({chosen})", chosen), ("1", 1)]
    rows = []
    try:
        for neighbour in (False, True):
            spin = None
            if neighbour:
                spin = subprocess.Popen([sys.executable, "-c", _SPIN.format(s=600)])
            try:
                rates: dict[str, list[float]] = {label: [] for label, _ in settings}
                for r in range(rounds):  # round by round, so drift and warm caches favour no setting
                    log(f"bench: threads, {'a busy neighbour' if neighbour else 'alone'}, round {r + 1}/{rounds}")
                    order = settings if r % 2 == 0 else settings[::-1]
                    for label, n in order:
                        rates[label].append(_tokens_per_s(config, corpus, n, steps, warmup))
                for label, n in settings:
                    rows.append({"kind": "threads", "setting": label, "threads": n, "neighbour": neighbour,
                                 "hidden": hidden, "batch": batch, "tok_s": statistics.median(rates[label])})
            finally:
                if spin is not None:
                    spin.kill()
                    spin.wait()
    finally:
        torch.set_num_threads(default)
    one = {r["neighbour"]: r["tok_s"] for r in rows if r["threads"] == 1 and r["setting"] == "1"}
    for r in rows:
        r["vs_one"] = r["tok_s"] / one[r["neighbour"]]
    return rows


def threads_line(r: dict) -> str:
    where = "busy neighbour" if r["neighbour"] else "alone"
    return f"{where:<15} {r['setting']:<18} {r['hidden']:>4} {r['batch']:>5} {r['tok_s']:>10,.0f} {r['vs_one']:>7.2f}"
