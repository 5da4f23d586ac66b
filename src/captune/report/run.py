"""Read what a training run and the data commands left on disk, for the report.

``read_run(RUN_DIR)`` gathers ``config.yaml``, the events of ``metrics.jsonl`` (after a resume an
event may repeat for a step: the last one wins), ``checkpoints/*/captune.json`` and the
validation predictions. ``read_data(paths)`` looks next to each data file for what
``captune data split`` (``split.json``) and ``captune data validate`` (``summary.json``,
``rejects.jsonl``) wrote: in the data file's folder, or in a folder beside it whose validation
``config.yaml`` names the file the records came from (``data/checked`` next to ``data/splits``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captune.errors import CaptuneError


@dataclass
class Run:
    dir: Path
    config: dict[str, Any]
    config_text: str
    start: dict[str, Any]
    train: list[dict[str, Any]]
    """``train`` events by step (loss, lr, grad_norm, examples_per_s)."""
    evals: list[dict[str, Any]]
    """``eval`` events by step (val_loss and the generation metrics)."""
    end: dict[str, Any] | None
    checkpoints: dict[str, dict[str, Any]]
    """``captune.json`` of ``best`` and ``last``."""
    early_stop: dict[str, Any] | None = None
    resumes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        times = [
            e["time"]
            for e in self.train + self.evals + [self.start] + ([self.end] if self.end else [])
            if "time" in e
        ]
        return max(times) - min(times) if len(times) > 1 else None

    @property
    def metric_names(self) -> list[str]:
        skip = {"event", "time", "step", "epoch", "monitor", "score", "best", "val_loss"}
        return list(dict.fromkeys(k for e in self.evals for k in e if k not in skip))

    @property
    def best(self) -> dict[str, Any] | None:
        return self.checkpoints.get("best")


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "metrics.jsonl").exists() and (Path(path) / "config.yaml").exists()


def read_run(directory: str | os.PathLike) -> Run:
    import yaml

    from captune.io import iter_jsonl, read_json

    d = Path(directory)
    if not is_run_dir(d):
        raise CaptuneError(
            f"{d}: not a training run (no metrics.jsonl and config.yaml); "
            "give the output_dir of `captune train`"
        )
    text = (d / "config.yaml").read_text(encoding="utf-8")
    by_kind: dict[str, dict[Any, dict]] = {}
    for _, e in iter_jsonl(d / "metrics.jsonl", skip_partial_last=True):
        key = e.get("step", len(by_kind.get(e.get("event"), {})))
        by_kind.setdefault(e.get("event", "?"), {})[key] = e  # a repeated step after a resume: last wins
    starts = list(by_kind.get("start", {}).values())
    ckpts = {
        w: read_json(d / "checkpoints" / w / "captune.json")
        for w in ("best", "last")
        if (d / "checkpoints" / w / "captune.json").exists()
    }
    return Run(
        dir=d,
        config=yaml.safe_load(text) or {},
        config_text=text,
        start=starts[0] if starts else {},
        train=sorted(by_kind.get("train", {}).values(), key=lambda e: e["step"]),
        evals=sorted(by_kind.get("eval", {}).values(), key=lambda e: e["step"]),
        end=next(reversed(by_kind.get("end", {}).values()), None),  # a run continued after it ended: the last
        checkpoints=ckpts,
        early_stop=next(iter(by_kind.get("early_stop", {}).values()), None),
        resumes=list(by_kind.get("resume", {}).values()),
    )


def eval_dirs_in(run_dir: str | os.PathLike) -> list[Path]:
    """Evaluation folders under ``RUN/eval/`` (those holding an ``eval.json``), sorted by name."""
    root = Path(run_dir) / "eval"
    return sorted(p for p in root.iterdir() if (p / "eval.json").exists()) if root.is_dir() else []


def read_data(paths: dict[str, str | None], image_root: str | None = None) -> dict[str, Any]:
    """Counts and provenance of a run's data files: ``{"files": {role: {...}}, "split", "validate"}``."""
    from captune.data.records import read_records

    files, split, validate = {}, None, None
    for role, path in paths.items():
        if not path or not Path(path).exists():
            continue
        records = read_records(path)
        words = [len(c.split()) for r in records for c in r.captions]
        files[role] = {
            "path": str(path),
            "images": len(records),
            "captions": len(words),
            "mean_words": sum(words) / len(words) if words else None,
            "events": len({r.event for r in records if r.event}),
        }
        folder = Path(path).parent
        split = split or _json_if(folder / "split.json")
        validate = validate or _validate_info(folder) or _validate_info(_validated_from(folder, records))
    return {"files": files, "split": split, "validate": validate}


def _json_if(path: Path) -> dict | None:
    from captune.io import read_json

    return read_json(path) if path.exists() else None


def _validated_from(folder: Path, records) -> Path | None:
    """A validation folder beside ``folder`` whose input is the raw file the records came from."""
    import yaml

    source = next((r.meta.get("source", {}).get("file") for r in records[:1] if r.meta.get("source")), None)
    if not source or not folder.parent.is_dir():
        return None
    for candidate in sorted(folder.parent.iterdir()):
        cfg = candidate / "config.yaml"
        if candidate.is_dir() and (candidate / "summary.json").exists() and cfg.exists():
            recorded = (yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}).get("input")
            if recorded and Path(recorded).resolve() == Path(source).resolve():
                return candidate
    return None


def _validate_info(folder: Path | None) -> dict | None:
    from captune.io import iter_jsonl

    if folder is None or not (folder / "summary.json").exists():
        return None
    info = {"folder": str(folder), "summary": _json_if(folder / "summary.json"), "rejects": []}
    if (folder / "rejects.jsonl").exists():
        info["rejects"] = [row for _, row in iter_jsonl(folder / "rejects.jsonl")][:8]
    return info


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "–"
