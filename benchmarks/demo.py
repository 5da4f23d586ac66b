"""Wall-clock time of the default demo (``captune demo``), step by step, optionally under load.

    python benchmarks/demo.py [--runs 3] [--load] [--seeds 0 1 2] [--out /tmp/demo-bench]

Runs the demo as the README's first command does (each run in a fresh process, so thread
settings and imports are a user's), timing each message-to-message step. ``--load`` keeps one
other process busy on one core for the whole benchmark (``while True: pass``), as on CI and
laptops. Prints each run's steps, the headline deltas, the share of test images whose
fine-tuned caption names the right event, and the median total.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from itertools import pairwise

CHILD = r"""
import json, sys, time
import torch
from captune.demo.run import run_demo
marks, threads = [], []
t0 = time.time()
def echo(msg):
    threads.append(torch.get_num_threads())  # while the demo runs (it restores them after)
    marks.append((time.time() - t0, msg))
    print(f"[{time.time() - t0:6.1f} s] {msg}", flush=True)
args = json.loads(sys.argv[1])
summary = run_demo(args["out"], echo=echo, progress=False, seed=args["seed"], overrides=args["set"])
print("RESULT " + json.dumps({"marks": marks, "total": time.time() - t0, "compare": summary["compare"],
                              "threads": max(threads)}), flush=True)
"""


def event_naming(out: str) -> tuple[int, int]:
    """(test images whose fine-tuned caption names the image's event, test images)."""
    from captune.demo.accuracy import house_style

    events = {}
    with open(os.path.join(out, "data", "splits", "test.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            events[r["image_id"]] = r["meta"]["event"]
    right = 0
    with open(os.path.join(out, "run", "eval", "finetuned", "predictions.jsonl")) as f:
        for line in f:
            p = json.loads(line)
            right += house_style(p["caption"]) == events[p["image_id"]]
    return right, len(events)


def one_run(out: str, seed: int, overrides: list[str]) -> dict:
    """Run the demo once in a child process; its steps, total, deltas and event naming."""
    subprocess.run(["rm", "-rf", out], check=True)
    arg = json.dumps({"out": out, "seed": seed, "set": overrides})
    proc = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    result = json.loads(proc.stdout.rsplit("RESULT ", 1)[1])
    marks = result["marks"] + [[result["total"], "end"]]
    result["steps"] = [(m, round(b[0] - a, 1)) for (a, m), b in pairwise(marks)]
    result["event_right"], result["test_images"] = event_naming(out)
    return result


def report(name: str, r: dict) -> None:
    print(f"run {name}: {r['total']:.1f} s, torch threads {r['threads']}")
    for msg, sec in r["steps"]:
        print(f"  {sec:7.1f} s  {msg}")
    for metric in ("bleu_4", "cider", "clipscore", "attr_accuracy"):
        m = r["compare"][metric]
        print(f"  {metric:<14} {m['a']:.3f} -> {m['b']:.3f}  delta {m['delta']:+.3f} "
              f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]")
    print(f"  right event: {r['event_right']}/{r['test_images']} "
          f"({100 * r['event_right'] / r['test_images']:.0f}%)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/captune-demo-bench")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="each seed is run --runs times")
    ap.add_argument("--load", action="store_true", help="keep one other process busy on one core")
    ap.add_argument("--set", action="append", default=[], help="fine-tuning override key=value (repeatable)")
    args = ap.parse_args()
    load = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    try:
        totals = []
        for seed in args.seeds:
            for i in range(args.runs):
                r = one_run(f"{args.out}-{seed}-{i}", seed, args.set)
                report(f"seed {seed}, {i}", r)
                totals.append(r["total"])
    finally:
        if load:
            load.kill()
    print(json.dumps({
        "median_seconds": round(statistics.median(totals), 1), "totals": [round(t, 1) for t in totals],
        "load": "one busy process" if args.load else "none", "seeds": args.seeds, "overrides": args.set,
        "machine": f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})",
        "load_average_at_end": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
