"""The embedded demo's torch threads: one per core that other processes leave free."""

import torch

from captune.demo import run


def _machine(monkeypatch, cores, load):
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(run.os, "getloadavg", lambda: (load, load, load))


def test_free_cores_leaves_out_the_busy_ones(monkeypatch):
    for cores, load, free in ((2, 0.1, 2), (2, 1.0, 1), (2, 3.7, 1), (8, 2.2, 6)):
        _machine(monkeypatch, cores, load)
        assert run.free_cores() == free, (cores, load)


def test_demo_threads_sets_and_restores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    _machine(monkeypatch, 2, 1.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with run.demo_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        with run.demo_threads():  # the user's setting wins
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
