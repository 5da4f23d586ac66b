"""Reading a run that was resumed after it finished (more steps): its last ``end`` event is the run's end."""

from captune.io import write_jsonl
from captune.report.run import read_run


def test_a_run_continued_after_its_end_reports_its_last_end(tmp_path):
    (tmp_path / "config.yaml").write_text("model:\n  name: tiny-blip2-opt\n")
    write_jsonl(
        tmp_path / "metrics.jsonl",
        [
            {"event": "start", "time": 10.0},
            {"event": "eval", "time": 11.0, "step": 4, "val_loss": 4.0, "score": 4.0},
            {"event": "end", "time": 12.0, "step": 4, "best_step": 4, "best_score": 4.0},
            {"event": "resume", "time": 20.0, "resumed_at": 4},
            {"event": "eval", "time": 21.0, "step": 8, "val_loss": 3.0, "score": 3.0},
            {"event": "end", "time": 22.0, "step": 8, "best_step": 8, "best_score": 3.0},
        ],
    )
    run = read_run(tmp_path)
    assert run.end["step"] == 8 and run.end["best_score"] == 3.0
