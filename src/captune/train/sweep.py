"""Grid search: one fine-tuning run per combination, ranked on validation, the best few tested.

    captune sweep train configs/finetune/tiny-lora.yaml --grid train.lr=1e-3,3e-3 \\
        --grid finetune.method=lora,rslora --out runs/sweep data.train=... data.val=... --test test.jsonl
    result = run_sweep(SweepSpec("configs/finetune/tiny-lora.yaml", {"train.lr": ["1e-3", "3e-3"]}, "runs/sweep",
                                 ["data.train=...", "data.val=..."]))

Every combination of the ``--grid KEY=V1,V2`` values (their product, in the order given) is a
``captune train`` run of CONFIG with the shared overrides, then the grid values, in
``DIR/runs/<name>`` (the name spells the values: ``lr=1e-3,method=lora``). Every combination's
configuration is validated before anything trains. Running the sweep again skips the runs that
finished (their ``metrics.jsonl`` has an ``end`` event) and resumes one that was stopped from its
``checkpoints/last/`` with the training loop's strict resume, so the result equals an
uninterrupted sweep; a run folder whose saved ``config.yaml`` differs from this sweep's stops it.

Runs go one after another in this process, or ``parallel`` at a time as ``captune train``
processes (output in ``runs/<name>/train.log``): on CPU each gets ``cpus // parallel`` threads
(``OMP_NUM_THREADS``), with GPUs each its own (``CUDA_VISIBLE_DEVICES``, round robin).

Runs are ranked by their best ``eval.monitor`` on the validation data (``val_loss``: lower is
better; a metric or a sum: higher). With ``test``, the ``top`` best are evaluated on it
(``DIR/runs/<name>/eval/finetuned``, decoded as in validation) and compared with their base model
(``DIR/eval/base-<model>``) by ``captune.evaluate.compare`` (paired bootstrap intervals), written
to ``DIR/runs/<name>/eval/compare.json``. ``DIR/sweep.json`` holds the grid, every run's status,
score, rank, seconds and test comparison; ``DIR/report.html`` the table and every run's curves.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from captune.config import load_config
from captune.config import parse_grid as config_parse_grid
from captune.errors import CaptuneError, ConfigError
from captune.io import iter_jsonl, write_json
from captune.train.config import TrainConfig

SWEEP_FILE, RUNS_DIR = "sweep.json", "runs"
NOT_GRIDDABLE = {"output_dir": "each run's output_dir is DIR/runs/<name>",
                 "eval.monitor": "runs are ranked by one monitor; run one sweep per monitor"}


@dataclass
class SweepSpec:
    config: str | os.PathLike | None
    """The base training config (YAML); None for the defaults and overrides alone."""
    grid: dict[str, list[str]]
    """Dotted key -> the values to try, as written (parsed as YAML like any override)."""
    out: str | os.PathLike
    overrides: list[str] = field(default_factory=list)
    """``key=value`` applied to every run, before the grid values."""
    test: str | os.PathLike | None = None
    """Records to evaluate the best runs on; None: rank on validation only."""
    top: int = 3
    parallel: int = 1
    metrics: list[str] | None = None
    """Test metrics (default: those ``captune evaluate`` runs here)."""
    resamples: int = 1000
    seed: int = 0


@dataclass
class Run:
    name: str
    values: dict[str, str]
    cfg: TrainConfig
    overrides: list[str]

    @property
    def dir(self) -> Path:
        return Path(self.cfg.output_dir)


# ---- the grid ----------------------------------------------------------------------------

def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["train.lr=1e-5,5e-5", "finetune.targets=[q,v],all_linear"]`` -> ``{key: [values]}``
    (``captune.config.parse_grid``; a list is one value); ``output_dir`` and ``eval.monitor`` cannot vary."""
    if not specs:
        raise ConfigError("give at least one --grid KEY=V1,V2 (for example --grid train.lr=1e-5,5e-5)")
    return config_parse_grid(specs, "train.lr=1e-5,5e-5", NOT_GRIDDABLE)


def plan_runs(spec: SweepSpec) -> list[Run]:
    """Every combination as a validated run (its config checked now, before anything trains)."""
    clash = [k for k in spec.grid if any(o.partition("=")[0].strip() == k for o in spec.overrides)]
    if clash:
        raise ConfigError(f"{clash[0]} is both a --grid key and an override; drop one of them")
    keys, runs, names = list(spec.grid), [], {}
    for combo in itertools.product(*spec.grid.values()):
        values = dict(zip(keys, combo))
        name = run_name(values)
        if name in names:
            raise ConfigError(f"grid values {names[name]} and {values} give the same run folder {name!r}; "
                              "use values that differ in letters or digits")
        names[name] = values
        overrides = [*spec.overrides, *(f"{k}={v}" for k, v in values.items()),
                     f"output_dir={Path(spec.out) / RUNS_DIR / name}"]
        try:
            cfg = load_config(TrainConfig, spec.config, overrides)
        except ConfigError as err:
            raise ConfigError(f"grid run {name}: {err}") from None
        runs.append(Run(name, values, cfg, overrides))
    if runs[0].cfg.data.val is None:
        raise ConfigError("a sweep ranks its runs by eval.monitor on validation data: set data.val "
                          "(in the config or as data.val=FILE)")
    return runs


def run_name(values: dict[str, str]) -> str:
    """``{"train.lr": "1e-5", "finetune.method": "lora"}`` -> ``lr=1e-5,method=lora`` (a folder name).

    A key is shortened to its last part unless another key ends the same way; characters other
    than letters, digits and ``._+-`` become ``-``.
    """
    last = [k.rsplit(".", 1)[-1] for k in values]
    parts = []
    for key, short in zip(values, last):
        label = short if last.count(short) == 1 else key
        parts.append(f"{label}={re.sub(r'[^A-Za-z0-9._+-]+', '-', values[key]).strip('-')}")
    return ",".join(parts)


# ---- the runs ----------------------------------------------------------------------------

def run_state(run: Run) -> str:
    """``done`` (an ``end`` event), ``resume`` (``checkpoints/last/`` saved) or ``new``; checks the saved config."""
    _check_saved_config(run)
    log = run.dir / "metrics.jsonl"
    if log.exists() and any(e.get("event") == "end" for _, e in iter_jsonl(log, skip_partial_last=True)):
        return "done"
    return "resume" if (run.dir / "checkpoints" / "last").exists() else "new"


def _check_saved_config(run: Run) -> None:
    import yaml

    saved_path = run.dir / "config.yaml"
    if not saved_path.exists():
        return
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    now = run.cfg.model_dump(mode="json")
    differ = _differences(saved, now)
    if differ:
        key, old, new = differ[0]
        raise CaptuneError(f"{saved_path}: this run was made with {key}={old!r}, the sweep now says {new!r}; "
                           "use another --out, or delete that run folder to train it again")


def _differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    a = list(a) if isinstance(a, tuple) else a
    b = list(b) if isinstance(b, tuple) else b
    return [] if a == b else [(prefix.rstrip("."), a, b)]


def train_in_process(run: Run, resume: bool) -> None:
    from captune.train.loop import finetune

    finetune(run.cfg, resume=resume, progress=False)


def train_in_subprocess(run: Run, resume: bool, config, env: dict[str, str]) -> None:
    """``captune train`` in its own process, its output in ``runs/<name>/train.log``."""
    cmd = [sys.executable, "-m", "captune", "train", *([str(config)] if config else []), *run.overrides,
           "--no-progress", *(["--resume"] if resume else [])]
    run.dir.mkdir(parents=True, exist_ok=True)
    with (run.dir / "train.log").open("a", encoding="utf-8") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        raise CaptuneError(f"captune train exited with {done.returncode}; see {run.dir / 'train.log'}")


def worker_env(slot: int, parallel: int, gpus: Sequence[str]) -> dict[str, str]:
    """The environment of the run in ``slot``: its share of the CPU threads, its GPU when there are GPUs."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = str(max(1, cpus // parallel))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "TOKENIZERS_PARALLELISM": "false"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    return env


def visible_gpus() -> list[str]:
    """GPU ids a child process may be given: ``CUDA_VISIBLE_DEVICES`` when set, else every CUDA device."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def train_runs(runs: Sequence[Run], spec: SweepSpec, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Train what is not finished; returns ``{name: {"status", "error"?}}``."""
    todo = {}
    outcome: dict[str, dict[str, Any]] = {}
    for run in runs:
        state = run_state(run)
        if state == "done":
            outcome[run.name] = {"status": "finished earlier"}
            continue
        if state == "new" and run.dir.exists():
            shutil.rmtree(run.dir)  # started, but stopped before its first checkpoint: start again
        todo[run.name] = (run, state == "resume")
    if spec.parallel <= 1:
        for k, (run, resume) in enumerate(todo.values()):
            log(f"[{k + 1}/{len(todo)}] {'resuming' if resume else 'training'} {run.name}")
            outcome[run.name] = _attempt(lambda r=run, s=resume: train_in_process(r, s), resume)
        return outcome
    outcome.update(_train_parallel(list(todo.values()), spec, log))
    return outcome


def _attempt(train: Callable[[], None], resume: bool) -> dict[str, Any]:
    try:
        train()
    except CaptuneError as err:
        return {"status": "failed", "error": str(err)}
    return {"status": "resumed" if resume else "trained"}


def _train_parallel(todo: list[tuple[Run, bool]], spec: SweepSpec, log) -> dict[str, dict[str, Any]]:
    gpus = visible_gpus()
    slots: Queue[int] = Queue()
    for slot in range(spec.parallel):
        slots.put(slot)

    def one(item: tuple[Run, bool]) -> tuple[str, dict[str, Any]]:
        run, resume = item
        slot = slots.get()
        try:
            log(f"{'resuming' if resume else 'training'} {run.name} (process slot {slot})")
            env = worker_env(slot, spec.parallel, gpus)
            return run.name, _attempt(lambda: train_in_subprocess(run, resume, spec.config, env), resume)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=spec.parallel) as pool:
        return dict(pool.map(one, todo))


# ---- results -----------------------------------------------------------------------------

def run_result(run: Run) -> dict[str, Any]:
    """What a finished run's folder says: best score and step, validation metrics there, seconds."""
    from captune.report.run import read_run

    r = read_run(run.dir)
    end = r.end or {}
    best_step = end.get("best_step")
    at_best = next((e for e in r.evals if e["step"] == best_step), {})
    skip = {"event", "time", "step", "epoch", "monitor", "score", "best"}
    return {"score": end.get("best_score"), "best_step": best_step, "steps": end.get("step"),
            "stopped_early": end.get("stopped_early"), "trainable": r.start.get("trainable"),
            "total_params": r.start.get("total"), "seconds": training_seconds(run.dir / "metrics.jsonl"),
            "val": {k: v for k, v in at_best.items() if k not in skip}}


def training_seconds(log: Path) -> float | None:
    """Time spent training: each segment (a start or resume up to its last event) summed, so the
    time a stopped run waited before it was resumed is left out."""
    total, begin, last = 0.0, None, None
    for _, e in iter_jsonl(log, skip_partial_last=True):
        if e.get("event") in ("start", "resume"):
            total += (last - begin) if begin is not None and last is not None else 0.0
            begin = e.get("time")
        last = e.get("time", last)
    if begin is None or last is None:
        return None
    return round(total + last - begin, 2)


def rank(rows: list[dict[str, Any]], higher_is_better: bool) -> list[dict[str, Any]]:
    """Rows with a score, best first (``rank`` 1, 2, ...; ties in grid order), then the rest unranked:
    no score, or one that is not a finite number (a diverged run's NaN would break the ordering)."""
    def finite(r: dict[str, Any]) -> bool:
        return r.get("score") is not None and math.isfinite(r["score"])

    scored = sorted(filter(finite, rows), key=lambda r: -r["score"] if higher_is_better else r["score"])
    for k, r in enumerate(scored):
        r["rank"] = k + 1
    return scored + [r for r in rows if not finite(r)]


def evaluate_on_test(runs: Sequence[Run], rows: list[dict[str, Any]], spec: SweepSpec, log) -> None:
    """Evaluate the ``top`` ranked runs and their base models on ``spec.test``; compare each with its base."""
    from captune.evaluate import compare, evaluate

    by_name = {r.name: r for r in runs}
    for row in [r for r in rows if r.get("rank") and r["rank"] <= spec.top]:
        run = by_name[row["name"]]
        cfg = run.cfg
        base_dir = Path(spec.out) / "eval" / f"base-{re.sub(r'[^A-Za-z0-9._+-]+', '-', cfg.model.name)}"
        tuned_dir = run.dir / "eval" / "finetuned"
        log(f"testing #{row['rank']} {run.name} on {spec.test}")
        common = {"decoding": cfg.eval.decoding, "metrics": spec.metrics, "batch_size": cfg.eval.batch_size,
                  "progress": False}
        evaluate(spec.test, base_dir, model=cfg.model.name, prompt=cfg.data.prompt or None, **common)
        evaluate(spec.test, tuned_dir, adapter=str(run.dir / "checkpoints" / "best"), **common)
        result = compare([base_dir, tuned_dir], resamples=spec.resamples, seed=spec.seed)
        write_json(run.dir / "eval" / "compare.json", result)
        row["test"] = {"base": str(base_dir), "finetuned": str(tuned_dir), "compare": result["metrics"]}


def run_sweep(spec: SweepSpec, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Plan, train (skipping and resuming), rank, test the best and write sweep.json and report.html."""
    from captune.report.sweep import write_sweep_report

    runs = plan_runs(spec)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    outcome = train_runs(runs, spec, log)
    monitor = runs[0].cfg.eval.monitor
    rows = []
    for run in runs:
        row = {"name": run.name, "values": run.values, "dir": str(run.dir), "rank": None, "score": None,
               "best_step": None, "steps": None, "val": {}, "trainable": None, "seconds": None, "error": None,
               **outcome[run.name]}
        if row["status"] != "failed":
            row.update(run_result(run))
        rows.append(row)
    rows = rank(rows, higher_is_better=monitor != "val_loss")
    if spec.test and spec.top > 0:
        evaluate_on_test(runs, rows, spec, log)
    summary = {"config": str(spec.config) if spec.config else None, "grid": spec.grid, "overrides": spec.overrides,
               "monitor": monitor, "higher_is_better": monitor != "val_loss", "test": str(spec.test or "") or None,
               "top": spec.top, "parallel": spec.parallel, "seconds": round(time.perf_counter() - t0, 2),
               "best": rows[0]["name"] if rows and rows[0].get("rank") else None, "runs": rows}
    summary["report"] = str(write_sweep_report(out, summary))
    write_json(out / SWEEP_FILE, summary)
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        raise CaptuneError(f"{len(failed)} of {len(rows)} runs failed (run the sweep again to retry them): "
                           + "; ".join(f"{r['name']}: {r['error']}" for r in failed))
    return summary
