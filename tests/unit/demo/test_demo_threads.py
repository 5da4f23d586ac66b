"""The embedded demo's torch threads: one per core that other processes leave free."""

import torch

from captune.demo import run


def _machine(monkeypatch, cores, load, runnable_now=0):
    monkeypatch.setattr(run.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(run.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(run, "_runnable_others", lambda: runnable_now)


def test_free_cores_leaves_out_the_busy_ones(monkeypatch):
    for cores, load, free in ((2, 0.1, 2), (2, 1.0, 1), (2, 3.7, 1), (8, 2.2, 6)):
        _machine(monkeypatch, cores, load)
        assert run.free_cores() == free, (cores, load)


def test_free_cores_sees_a_process_started_too_recently_for_the_load_average(monkeypatch):
    _machine(monkeypatch, 2, 0.2, runnable_now=1)
    assert run.free_cores() == 1


def test_runnable_others_counts_a_busy_process(tmp_path):
    import subprocess
    import sys
    import time

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert max(run._runnable_others() for _ in range(20)) >= 1
    finally:
        busy.kill()
        busy.wait()


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
