"""How many CPU threads torch may use: from the CPUs this process may run on and the model's size.

OpenMP's threads spin while they wait for each other. When another process shares the cores
(a second training job, a test suite, the TUI's own event loop), a spinning thread keeps a core
busy doing nothing, and a small model steps several times slower with two threads than with
one (measured: `rnn-tui train grammar --steps 150` took 71 s with torch's default threads and
10.6 s with one, next to one busy process on a 2-core machine). So:

- ``--threads N`` (or `choose_threads(requested=N)`) wins; then ``OMP_NUM_THREADS`` from the
  environment, which torch honours itself;
- otherwise a model too small to gain from a second thread gets one (`SMALL_WORK`), and a larger
  one gets the CPUs this process may use (affinity and cgroup quota), less those other processes
  keep busy (the load average), never fewer than one.

No torch import here: `choose_threads` is plain arithmetic, `apply_threads` imports torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

# Multiply-adds of one recurrent step's matrix products (batch x hidden x gates*hidden) below
# which a second thread gains nothing here (the bundled models, H=64 x batch 32, are ~0.5M).
SMALL_WORK = 4_000_000


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str  # one line for a person: why this many


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota() -> float | None:
    """The cgroup's CPU limit in CPUs (v2 cpu.max, else v1 cfs quota), None when unlimited."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text()[:64].split()
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text()[:32])
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text()[:32])
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def busy_elsewhere(cpus: int) -> int:
    """About how many of the CPUs other processes keep busy now (the 1-minute load average)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0
    return max(0, min(cpus - 1, int(load + 0.25)))


def step_work(hidden: int, batch: int = 1, cell: str = "lstm") -> int:
    """Multiply-adds of one recurrent step's products for a batch (the per-step cost)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}.get(cell, 4)
    return int(batch) * int(hidden) * gates * int(hidden) * 2  # input and recurrent products


def choose_threads(hidden: int = 64, batch: int = 1, cell: str = "lstm", requested: int | None = None,
                   environ=os.environ) -> ThreadChoice:
    """How many intra-op threads for this much work (see the module docstring)."""
    if requested is not None:
        return ThreadChoice(max(1, int(requested)), "--threads")
    env = environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return ThreadChoice(int(env), "OMP_NUM_THREADS")
    cpus = usable_cpus()
    if step_work(hidden, batch, cell) < SMALL_WORK or cpus == 1:
        return ThreadChoice(1, "a model this small gains nothing from a second thread" if cpus > 1
                            else "one CPU available")
    free = max(1, cpus - busy_elsewhere(cpus))
    why = f"{cpus} CPUs usable" + (f", {cpus - free} busy elsewhere" if free < cpus else "")
    return ThreadChoice(free, why)


def apply_threads(choice: ThreadChoice) -> ThreadChoice:
    """Set torch's intra-op thread count (process-wide)."""
    import torch

    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice
