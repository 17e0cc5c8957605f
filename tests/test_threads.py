"""engine.threads: torch's CPU thread count from the CPUs this process may use and the model's size."""

from __future__ import annotations

import pytest

from rnn_tui.engine import threads
from rnn_tui.engine.threads import SMALL_WORK, choose_threads, step_work, usable_cpus


@pytest.fixture
def machine(monkeypatch):
    """A pretend machine: `cpus` usable, `busy` of them kept busy by other processes."""
    state = {"cpus": 8, "busy": 0}
    monkeypatch.setattr(threads, "usable_cpus", lambda: state["cpus"])
    monkeypatch.setattr(threads, "busy_elsewhere", lambda cpus: min(cpus - 1, state["busy"]))
    return state


def test_requested_and_environment_win(machine):
    assert choose_threads(4096, 256, requested=3, environ={}).threads == 3
    assert choose_threads(16, 1, requested=5, environ={"OMP_NUM_THREADS": "2"}).threads == 5
    env = choose_threads(16, 1, environ={"OMP_NUM_THREADS": "2"})
    assert env.threads == 2 and env.reason == "OMP_NUM_THREADS"


def test_a_small_model_gets_one_thread(machine):
    # The bundled models (H=64, batch 32) are far below the work a second thread pays for.
    assert step_work(64, 32, "lstm") < SMALL_WORK
    choice = choose_threads(64, 32, "lstm", environ={})
    assert choice.threads == 1 and "small" in choice.reason


def test_a_large_model_gets_the_free_cpus(machine):
    assert step_work(512, 64, "lstm") > SMALL_WORK
    assert choose_threads(512, 64, "lstm", environ={}).threads == 8
    machine["busy"] = 3  # a neighbour's work: spinning threads would only fight it
    choice = choose_threads(512, 64, "lstm", environ={})
    assert choice.threads == 5 and "busy elsewhere" in choice.reason
    machine["busy"] = 8
    assert choose_threads(512, 64, "lstm", environ={}).threads == 1  # never fewer than one


def test_usable_cpus_follows_the_affinity_mask():
    import os

    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_the_cli_sets_the_threads_it_is_asked_for(capsys):
    import torch

    from rnn_tui.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["trace", "rnn", "the cat", "--threads", "1", "--json"]) == 0
        assert torch.get_num_threads() == 1
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main(["trace", "rnn", "the cat", "--threads", "0"])
        assert stop.value.code == 2 and "--threads: must be at least 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
