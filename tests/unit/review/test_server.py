"""A real server (``captune review serve`` under uvicorn, on loopback): it binds 127.0.0.1 only,
and a server killed mid-run and started again has every rating it acknowledged."""

import os
import signal
import threading
import time
from pathlib import Path

import httpx
from study_helpers import free_port, make_study, start_server

from captune.review import Study


def _listening_addresses(port: int) -> set[str]:
    """Local addresses in LISTEN state on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if int(hex_port, 16) == port and state == "0A":
                    found.add(address)
    return found


def _rate_until_stopped(base: str, token: str, acknowledged: list, stop: threading.Event) -> None:
    client = httpx.Client(base_url=base, timeout=5)
    csrf = client.post("/api/login", json={"token": token}).json()["csrf"]
    while not stop.is_set():
        try:
            r = client.get("/api/next")
            if r.status_code == 204:
                return
            if r.status_code == 429:  # faster than the per-session rate limit
                time.sleep(0.2)
                continue
            item = r.json()
            body = {"item_id": item["item_id"], "preferred": None,
                    "scores": {c["slot"]: {k: 3 for k in item["criteria"]} for c in item["captions"]}}
            if client.post("/api/ratings", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200:
                acknowledged.append(item["item_id"])
        except httpx.TransportError:
            return


def test_a_killed_server_loses_no_acknowledged_rating_and_binds_loopback(tmp_path):
    made = make_study(tmp_path, n_items=400, raters=["alice"], criteria=["relevance"])
    port = free_port()
    server = start_server(made["study"], port)
    acknowledged, stop = [], threading.Event()
    try:
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        worker = threading.Thread(target=_rate_until_stopped,
                                  args=(f"http://127.0.0.1:{port}", made["raters"]["alice"], acknowledged, stop))
        worker.start()
        while len(acknowledged) < 30 and worker.is_alive():
            worker.join(0.05)
        server.send_signal(signal.SIGKILL)  # mid-run, no shutdown
        server.wait(10)
        worker.join(10)
    finally:
        stop.set()
        server.kill()
    assert 30 <= len(acknowledged) < 400
    restarted = start_server(made["study"], port)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        client.post("/api/login", json={"token": made["raters"]["alice"]})
        progress = client.get("/api/next").json()["progress"]
    finally:
        restarted.kill()
        restarted.wait(10)
    rated = {r["item_id"] for r in Study(made["study"]).export_rows()}
    assert set(acknowledged) <= rated and progress["done"] == len(rated) >= len(acknowledged)


def test_serving_on_another_address_warns(tmp_path, monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from captune.cli import cli

    made = make_study(tmp_path)
    bound = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: bound.append((host, port)))  # binds nothing
    runner = CliRunner()
    loud = runner.invoke(cli, ["review", "serve", made["study"], "--host", "0.0.0.0", "--port", "8123"])
    quiet = runner.invoke(cli, ["review", "serve", made["study"], "--port", "8124"])
    assert "warning: serving on 0.0.0.0" in loud.stderr and "warning" not in quiet.stderr
    assert bound == [("0.0.0.0", 8123), ("127.0.0.1", 8124)]
