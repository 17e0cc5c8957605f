"""Memory of a corpus far larger than a training batch: peak RSS while a 1 GB character-level
text is encoded into the cache, and while training starts from that cache (a hit).

    python benchmarks/bench_corpus_memory.py [--mb 1024] [--steps 50] [--level char]

The text is generated (toy-grammar sentences) in a temporary directory, which is removed at the
end. Each phase runs in a fresh interpreter so its peak RSS (VmHWM, which counts the memory-mapped
cache pages the process touched) is its own; the baseline is the same interpreter
after importing torch and the engine, before loading anything. Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PHASE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, ROOT)
import torch
from rnn_tui.engine.corpus import load_corpus
from rnn_tui.engine.train import TrainConfig, Trainer

def rss_mb():  # current RSS, and its anonymous part (what the process itself allocated)
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields.get("RssAnon", "0 kB").split()[0]) / 1024

def peak_mb():  # VmHWM: this process image's peak (ru_maxrss would count the parent's, from fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

out = {"baseline_rss_mb": rss_mb()[0], "import_s": time.perf_counter() - t0}
torch.set_num_threads(2)
t = time.perf_counter()
corpus = load_corpus(PATH, LEVEL, cache_dir=CACHE)
out["load_s"] = time.perf_counter() - t
out["tokens"] = int(len(corpus.train) + len(corpus.val))
out["dtype"] = str(corpus.train.dtype)
out["memmap"] = type(corpus.train).__name__
out["after_load_rss_mb"], out["after_load_anon_mb"] = rss_mb()
out["after_load_peak_mb"] = peak_mb()
if STEPS:
    def config(corpus, steps):
        return TrainConfig(corpus=corpus, level=LEVEL, cell="lstm", hidden=128, embed=32, batch=64, seq_len=128,
                           steps=steps, eval_every=10**9, eval_batches=2, device="cpu", seed=0)

    def first_step(cfg, corpus):
        marks = {}
        t = time.perf_counter()
        trainer = Trainer(cfg, corpus=corpus, on_metrics=lambda m: marks.setdefault(m.step, time.perf_counter()))
        init = time.perf_counter() - t
        trainer.run()
        return trainer, init, marks[1] - t

    # The first Trainer of a process pays torch's one-time costs (torch.optim imports
    # torch._dynamo, the first LSTM kernels set up oneDNN): measured on its own first, on the
    # bundled grammar corpus, then the cached corpus's start is timed in the warm process.
    _, out["cold_init_s"], out["cold_first_step_s"] = first_step(config("grammar", 1), load_corpus("grammar", LEVEL))
    trainer, out["trainer_init_s"], out["first_step_s"] = first_step(config(PATH, STEPS), corpus)
    out["steps"] = trainer.step
    out["after_train_rss_mb"], out["after_train_anon_mb"] = rss_mb()
out["peak_rss_mb"] = peak_mb()
print(json.dumps(out))
"""


def write_text(path: Path, mb: float) -> int:
    sys.path.insert(0, str(ROOT))
    from rnn_tui.engine.bench import write_grammar_text

    return write_grammar_text(path, mb)


def phase(path: Path, cache: Path, level: str, steps: int) -> dict:
    code = (PHASE.replace("ROOT", repr(str(ROOT))).replace("PATH", repr(str(path)))
            .replace("LEVEL", repr(level)).replace("CACHE", repr(str(cache))).replace("STEPS", str(steps)))
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"phase failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1024.0, help="size of the generated text (default 1024 MB)")
    ap.add_argument("--level", default="char", choices=("char", "word"))
    ap.add_argument("--steps", type=int, default=50, help="training steps on the cache hit")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rnn-tui-mem-") as tmp:
        path, cache = Path(tmp) / "corpus.txt", Path(tmp) / "cache"
        t = time.perf_counter()
        nbytes = write_text(path, args.mb)
        print(f"text: {nbytes / 2**20:,.0f} MB of generated sentences ({time.perf_counter() - t:.1f} s to write), "
              f"level {args.level}")
        miss = phase(path, cache, args.level, 0)
        hit = phase(path, cache, args.level, args.steps)
        mb = nbytes / 2**20
        print(f"baseline (python + torch + engine imported): {miss['baseline_rss_mb']:,.0f} MB RSS")
        print(f"cache miss: encode + write the cache  {miss['load_s']:7.2f} s  ({mb / miss['load_s']:,.0f} MB/s)  "
              f"peak RSS {miss['peak_rss_mb']:,.0f} MB; {miss['tokens']:,} tokens as {miss['dtype']} ({miss['memmap']})")
        print(f"cache hit:  load (memory map)          {hit['load_s']:7.3f} s  "
              f"RSS after load {hit['after_load_rss_mb']:,.0f} MB")
        print(f"            Trainer() + first step     {hit['first_step_s']:7.3f} s  "
              f"(Trainer() alone {hit['trainer_init_s']:.3f} s; a process's first Trainer pays torch's one-time "
              f"{hit['cold_first_step_s']:.2f} s on any corpus, here the bundled grammar)")
        print(f"            {hit['steps']} steps (batch 64 x 128, lstm H=128): RSS {hit['after_train_rss_mb']:,.0f} MB "
              f"(anonymous {hit['after_train_anon_mb']:,.0f} MB), peak RSS {hit['peak_rss_mb']:,.0f} MB")
        target = "ok" if max(miss["peak_rss_mb"], hit["peak_rss_mb"]) < 1536 else "ABOVE"
        start = "ok" if hit["load_s"] + hit["first_step_s"] < 1.0 else "ABOVE"
        print(f"targets: peak RSS < 1.5 GB: {target}; cache hit to the first step < 1 s: {start}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
