"""A few hundred mutated checkpoints (tests/fuzz_loader.py): each is loaded unchanged or refused
with one RnnTuiError line; never an internal error, a hang, or memory past a bound.

The loads run in a process of their own under an address-space limit (RLIMIT_AS, torch's own
mappings plus 1.5 GiB) with SIGALRM on each; the subprocess timeout guards the whole. A fixed
seed: the same cases every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_mutated_checkpoints_are_loaded_unchanged_or_refused(tmp_path):
    proc = subprocess.run([sys.executable, str(HERE / "fuzz_loader.py"), str(tmp_path), "0", "400"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["failures"] == [], "\n".join(report["failures"][:20])
    outcomes = report["outcomes"]
    assert sum(outcomes.values()) == 400
    assert outcomes["refused"] > 200 and outcomes["same"] > 5  # both kinds of case were drawn
    assert report["peak_mb"] < report["limit_mb"]
