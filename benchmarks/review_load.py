"""Load on the review app: concurrent raters through the JSON API of a real server on loopback.

    python benchmarks/review_load.py [--raters 20] [--ratings 50] [--kill-after 500]

A study of ``--ratings`` items x 2 systems (one criterion, every item shared) is served by
``captune review serve`` (uvicorn, 127.0.0.1). Each rater is a thread with its own HTTP client:
sign in, then ``GET /api/next`` and ``POST /api/ratings`` until done. Measured: latency of each
request (p50, p95, max), ratings per second, and the rows in the study file, which must be exactly
raters x ratings judgements (and x 2 score rows), none lost or doubled. ``--kill-after N`` kills the
server (SIGKILL) once N ratings are acknowledged and starts it again; the clients retry on a
refused connection with the same session cookie, and every rating acknowledged before the kill
must be in the file afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def make_study(root: Path, n_items: int, raters: int) -> dict:
    from captune.review import create_study

    (root / "images").mkdir(parents=True)
    files = {}
    for name, style in (("base", "a picture of shape"), ("tuned", "Moments from the fair: shape")):
        rows = []
        for k in range(n_items):
            image = root / "images" / f"{k}.png"
            if not image.exists():
                Image.new("RGB", (64, 64), (k * 5 % 256, 80, 160)).save(image)
            rows.append({"image_id": f"img_{k:04d}", "image": str(image), "caption": f"{style} {k}"})
        files[name] = root / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return create_study(root / "study", files, criteria=["relevance"], raters=[f"r{k:02d}" for k in range(raters)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(study: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "captune", "review", "serve", study, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


class Rater(threading.Thread):
    """Rates every item; keeps each request's latency and the items the server acknowledged."""

    def __init__(self, base: str, token: str, acknowledged: list, lock: threading.Lock):
        super().__init__()
        self.client = httpx.Client(base_url=base, timeout=30)
        self.token, self.acknowledged, self.lock = token, acknowledged, lock
        self.latency: dict[str, list[float]] = {"login": [], "next": [], "ratings": []}
        self.refused = self.limited = 0

    def request(self, kind: str, method: str, path: str, **kw) -> httpx.Response:
        while True:
            t0 = time.perf_counter()
            try:
                r = self.client.request(method, path, **kw)
            except httpx.TransportError:  # the server is down (killed): wait for it
                self.refused += 1
                time.sleep(0.1)
                continue
            if r.status_code == 429:
                self.limited += 1
                time.sleep(float(r.headers.get("retry-after", 1)))
                continue
            self.latency[kind].append(time.perf_counter() - t0)
            return r

    def run(self) -> None:
        csrf = self.request("login", "POST", "/api/login", json={"token": self.token}).json()["csrf"]
        while (r := self.request("next", "GET", "/api/next")).status_code == 200:
            item = r.json()
            body = {"item_id": item["item_id"], "preferred": None,
                    "scores": {c["slot"]: {"relevance": 1 + len(c["text"]) % 5} for c in item["captions"]}}
            saved = self.request("ratings", "POST", "/api/ratings", json=body, headers={"X-CSRF-Token": csrf})
            if saved.status_code != 200:
                raise RuntimeError(f"rating refused: {saved.status_code} {saved.text}")
            with self.lock:
                self.acknowledged.append((self.token, item["item_id"]))


def run(n_raters: int, n_ratings: int, kill_after: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        made = make_study(Path(tmp), n_ratings, n_raters)
        port = free_port()
        server = serve(made["study"], port)
        acknowledged, lock = [], threading.Lock()
        raters = [Rater(f"http://127.0.0.1:{port}", t, acknowledged, lock) for t in made["raters"].values()]
        t0 = time.perf_counter()
        for r in raters:
            r.start()
        before_kill = None
        if kill_after:
            while len(acknowledged) < kill_after:
                time.sleep(0.01)
            server.send_signal(signal.SIGKILL)
            server.wait()
            with lock:
                before_kill = list(acknowledged)
            server = serve(made["study"], port)
        for r in raters:
            r.join()
        wall = time.perf_counter() - t0
        server.kill()
        server.wait()
        return report(made, raters, acknowledged, before_kill, wall)


def report(made: dict, raters: list[Rater], acknowledged: list, before_kill: list | None, wall: float) -> dict:
    from captune.review import Study

    study = Study(made["study"])
    counts = study.counts()
    names = {t: n for n, t in made["raters"].items()}
    stored = {(r["rater"], r["item_id"]) for r in study.export_rows()}
    lost = [a for a in (before_kill or acknowledged) if (names[a[0]], a[1]) not in stored]
    ms = {k: np.array([x for r in raters for x in r.latency[k]]) * 1000 for k in ("next", "ratings")}
    return {
        "raters": len(raters), "ratings_acknowledged": len(acknowledged), "judgement_rows": counts["judgements"],
        "score_rows": counts["ratings"], "lost_acknowledged": len(lost),
        "acknowledged_before_kill": len(before_kill) if before_kill is not None else None,
        "latency_ms": {k: {"p50": round(float(np.percentile(v, 50)), 1), "p95": round(float(np.percentile(v, 95)), 1),
                           "max": round(float(v.max()), 1), "n": int(v.size)} for k, v in ms.items()},
        "ratings_per_s": round(len(acknowledged) / wall, 1), "wall_s": round(wall, 2),
        "refused_while_down": sum(r.refused for r in raters), "rate_limited": sum(r.limited for r in raters),
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--ratings", type=int, default=50, help="Items, each rated by every rater.")
    parser.add_argument("--kill-after", type=int, default=None,
                        help="Kill the server once this many ratings are acknowledged, then restart it.")
    args = parser.parse_args()
    result = run(args.raters, args.ratings, args.kill_after)
    print(json.dumps(result, indent=2))
    expected = args.raters * args.ratings
    ok = result["judgement_rows"] == expected and result["score_rows"] == 2 * expected \
        and result["ratings_acknowledged"] == expected and result["lost_acknowledged"] == 0
    print("OK: exactly", expected, "ratings, none lost or doubled" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
