"""The access token is never written anywhere: no file under OUT_DIR, no log record (httpx's and
httpcore's debug logs included), no command output, no exception, even when the Graph API echoes it."""

import json
import logging

from click.testing import CliRunner
from fake_graph import USER
from publish_helpers import TOKEN, live_config

from captune.agent.publish import publish
from captune.cli import cli


def _files_holding(out_dir, secret: str) -> list[str]:
    return [str(p) for p in out_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_the_token_is_in_no_file_log_output_or_error(out_dir, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.stall_s = 0.6
    fake.faults = {"publish": ["timeout_after", "500"], "status": ["500"], "create": ["500_after", "token"]}
    fake.final_status[f"{fake.image_base_url}/e01-p003/02.jpg"] = "ERROR"
    args = ["agent", "publish", str(out_dir), "--live", "publisher.enabled=true", "publisher.dry_run=false",
            f"publisher.ig_user_id={USER}", f"publisher.graph_url={fake.graph_url}", "publisher.timeout_s=0.3",
            f"publisher.image_base_url={fake.image_base_url}", "publisher.poll_interval_s=0.001"]
    outputs, codes = [], []
    for _ in range(3):  # a refused token stops the first run; the next ones go on
        run = CliRunner().invoke(cli, args, env={"CAPTUNE_IG_TOKEN": TOKEN})
        outputs.append(run.output)
        codes.append(run.exit_code)
    assert "Graph error 190" in outputs[0] and "e01-p003: failed" in outputs[-1]
    assert codes[0] == codes[-1] == 1  # a refused token, a failed post
    assert len(fake.published) == 2 and any(r.authorization == "ok" for r in fake.requests)
    dry = CliRunner().invoke(cli, [*args[:3], "--json"], env={"CAPTUNE_IG_TOKEN": TOKEN})
    outputs.append(dry.output)
    assert json.loads(dry.stdout)["mode"] == "dry_run"
    assert {p.name for p in out_dir.rglob("*")} >= {"ledger.sqlite", "plan.jsonl"}
    assert _files_holding(out_dir, TOKEN) == []
    assert "HTTP Request" in caplog.text and TOKEN not in caplog.text
    assert not any(TOKEN in o for o in outputs)


def test_a_token_echoed_back_by_the_api_is_scrubbed(out_dir, fake, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "EAAG-stale-token-0123456789"
    result = publish(out_dir, live_config(fake), live=True, env={"CAPTUNE_IG_TOKEN": wrong})
    message = result.stopped["message"]
    assert result.stopped["kind"] == "token" and "Cannot parse access token Bearer [token]" in message
    assert wrong not in json.dumps(result.to_json()) and wrong not in caplog.text
    assert _files_holding(out_dir, wrong) == []
