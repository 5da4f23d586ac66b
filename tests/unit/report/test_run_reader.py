"""Reading a run folder: events repeated after a resume (last wins), and the data files' history."""

import json

from captune.io import write_jsonl
from captune.report.run import read_data, read_run


def test_after_a_resume_the_last_event_of_a_step_wins(tmp_path):
    (tmp_path / "config.yaml").write_text("model:\n  name: tiny-blip2-opt\n")
    write_jsonl(
        tmp_path / "metrics.jsonl",
        [
            {"event": "start", "time": 10.0, "model": "tiny-blip2-opt"},
            {"event": "train", "time": 11.0, "step": 2, "loss": 5.0, "lr": 1e-3},
            {"event": "eval", "time": 12.0, "step": 4, "val_loss": 4.0, "cider": 0.1},
            {"event": "train", "time": 13.0, "step": 6, "loss": 3.0, "lr": 1e-3},
            {"event": "resume", "time": 20.0, "resumed_at": 4},
            {"event": "train", "time": 21.0, "step": 6, "loss": 2.5, "lr": 1e-3},
            {"event": "eval", "time": 22.0, "step": 8, "val_loss": 3.5, "cider": 0.2},
            {"event": "end", "time": 23.0, "step": 8},
        ],
    )
    run = read_run(tmp_path)
    assert [(e["step"], e["loss"]) for e in run.train] == [(2, 5.0), (6, 2.5)]
    assert [e["step"] for e in run.evals] == [4, 8] and run.metric_names == ["cider"]
    assert run.duration_s == 13.0 and len(run.resumes) == 1 and run.end["step"] == 8


def test_data_history_is_found_beside_the_split(tmp_path):
    checked, splits = tmp_path / "checked", tmp_path / "splits"
    checked.mkdir()
    splits.mkdir()
    raw = tmp_path / "posts.jsonl"
    (checked / "config.yaml").write_text(f"input: {raw}\nformat: jsonl\n")
    (checked / "summary.json").write_text(
        json.dumps({"rows": 5, "records": 2, "rejected": 3, "reasons": {"x": 3}})
    )
    write_jsonl(checked / "rejects.jsonl", [{"source": str(raw), "line": 4, "reason": "x", "detail": "bad"}])
    record = {
        "image_id": "a",
        "image": "a.png",
        "captions": ["a cat", "one cat"],
        "meta": {"event": "e", "source": {"file": str(raw), "lines": [1, 2]}},
    }
    write_jsonl(splits / "train.jsonl", [record])
    (splits / "split.json").write_text(json.dumps({"seed": 0, "counts": {"train": 1}}))
    info = read_data({"train": str(splits / "train.jsonl"), "validation": None})
    assert info["files"]["train"] == {
        "path": str(splits / "train.jsonl"),
        "images": 1,
        "captions": 2,
        "mean_words": 2.0,
        "events": 1,
    }
    assert info["split"]["counts"] == {"train": 1}
    assert info["validate"]["summary"]["rejected"] == 3 and info["validate"]["rejects"][0]["line"] == 4
