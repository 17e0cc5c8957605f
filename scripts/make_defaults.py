"""Regenerate the bundled default checkpoints in rnn_tui/defaults/{rnn,lstm,gru}/.

Deterministic: same seed, same corpus, same steps, single-threaded CPU -> the same weights.
    python scripts/make_defaults.py            # all three
    python scripts/make_defaults.py lstm       # one
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import shutil  # noqa: E402

from rnn_tui.engine.checkpoint import save_checkpoint  # noqa: E402
from rnn_tui.engine.train import TrainConfig, Trainer  # noqa: E402

DEFAULTS = ROOT / "rnn_tui" / "defaults"

# One budget for all three cells so the comparison screens compare like with like.
COMMON = dict(corpus="grammar", level="char", embed=32, hidden=64, layers=1, seq_len=64, batch=32,
              lr=3e-3, optimizer="adam", clip=1.0, steps=6000, eval_every=500, seed=0, device="cpu")


def make(cell: str) -> None:
    torch.set_num_threads(1)  # bit-for-bit reproducible runs
    config = TrainConfig(cell=cell, **COMMON)
    out = DEFAULTS / cell
    t0 = time.perf_counter()
    trainer = Trainer(config, run_dir=None)
    result = trainer.run()
    if result.diverged:
        raise SystemExit(f"{cell}: diverged: {result.stopped_reason}")
    # Weights and config only: a bundled default carries no optimizer state to resume from.
    shutil.rmtree(out, ignore_errors=True)
    lm = trainer.snapshot()
    save_checkpoint(out, lm.model, lm.vocab, lm.meta)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    last = trainer.history[-1]
    print(f"{cell}: {trainer.step} steps in {time.perf_counter() - t0:.1f}s, train {last.loss:.3f} "
          f"nats, best val {result.best_val_loss:.3f} nats, {size / 1024:.0f} KiB -> {out}")
    report_agreement(lm)


def report_agreement(lm) -> None:
    """The default sentence is an agreement test: what the new model puts on was / were."""
    from rnn_tui.engine.agreement_text import flip_subject
    from rnn_tui.engine.corpus import DEFAULT_SENTENCE
    from rnn_tui.engine.probes import verb_agreement

    for text in (DEFAULT_SENTENCE, flip_subject(DEFAULT_SENTENCE)):
        print(f"    {verb_agreement(lm, text).describe()}")


if __name__ == "__main__":
    for name in sys.argv[1:] or ["rnn", "lstm", "gru"]:
        make(name)
