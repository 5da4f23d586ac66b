"""The command line as a whole: exit statuses, the options every command shares, the entry
points, and a start that imports neither torch nor transformers."""

import json
import subprocess
import sys
import types
from importlib import metadata

import click
from click.testing import CliRunner

from captune.cli import DTYPE_CHOICES, cli
from captune.cli.caption import DECODINGS


def leaf_commands(group: click.Group = cli, prefix: str = "") -> dict[str, click.Command]:
    """Every command users run, by its full name ("data split"); a group that runs on its own counts."""
    found = {}
    commands = group.all_commands() if hasattr(group, "all_commands") else group.commands
    for name, command in commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                found[full] = command
            found.update(leaf_commands(command, full + " "))
        else:
            found[full] = command
    return found


def option_names(command: click.Command) -> set[str]:
    return {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}


def test_a_usage_error_exits_2():
    runner = CliRunner()
    unknown = runner.invoke(cli, ["metrics", "--no-such-option"])
    assert unknown.exit_code == 2 and "No such option" in unknown.output
    missing = runner.invoke(cli, ["train"])
    assert missing.exit_code == 2 and "missing CONFIG.yaml" in missing.output


def test_a_captune_error_at_run_time_exits_1_with_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "no eval.json" in result.stderr
    assert "Traceback" not in result.output


SERVERS = {"review serve"}
"""Commands that serve until stopped: they print an address, not a summary."""


def test_every_command_that_prints_a_summary_has_json():
    commands = leaf_commands()
    assert {"data split", "demo", "demo world", "demo build-base", "export", "models list", "metrics"} <= set(commands)
    assert SERVERS <= set(commands)
    assert [name for name, command in commands.items()
            if name not in SERVERS and "--json" not in option_names(command)] == []


def test_the_image_count_is_images_everywhere():
    for name, command in leaf_commands().items():
        opts = option_names(command)
        assert not opts & {"--n", "--n-images"}, name
        for param in command.params:
            if param.name == "n_images":
                assert param.opts == ["--images"], name


def test_export_merges_by_default(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("captune.models.export")
    fake.export_merged = lambda adapter, out, model=None: calls.append((adapter, out, model)) or out
    monkeypatch.setitem(sys.modules, "captune.models.export", fake)
    adapter, out = tmp_path / "best", tmp_path / "merged"
    adapter.mkdir()
    result = CliRunner().invoke(cli, ["export", "--adapter", str(adapter), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert calls == [(str(adapter), str(out), None)] and json.loads(result.output) == {"out": str(out)}
    refused = CliRunner().invoke(cli, ["export", "--adapter", str(adapter), "--out", str(out), "--no-merge"])
    assert refused.exit_code == 2 and "already is the unmerged adapter" in refused.output and len(calls) == 1


def test_choices_kept_literal_match_the_library():
    from captune.generate import PRESETS
    from captune.models import loading

    assert DTYPE_CHOICES == loading.DTYPE_CHOICES
    assert set(DECODINGS) == set(PRESETS)


def test_entry_points_run_the_same_cli():
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts["captune"] == "captune.cli:main"
    result = subprocess.run([sys.executable, "-m", "captune", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "metrics" in result.stdout and "demo" in result.stdout


STARTUP = """
import sys
from click.testing import CliRunner
import captune.cli
after_import = sorted(m for m in ("torch", "transformers") if m in sys.modules)
result = CliRunner().invoke(captune.cli.cli, ["metrics", "--help"])
assert result.exit_code == 0, result.output
after_help = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(after_import, after_help)
"""


def test_the_cli_and_metrics_help_start_without_torch():
    result = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_lazy_commands_name_every_command_of_every_cli_module():
    import importlib
    import pkgutil

    import captune.cli

    found = {}
    for info in pkgutil.iter_modules(captune.cli.__path__):
        module = importlib.import_module(f"captune.cli.{info.name}")
        found.update({command.name: info.name for command in getattr(module, "COMMANDS", ())})
    assert captune.cli.LAZY_COMMANDS == found


METRICS_RUN = """
import sys
from click.testing import CliRunner
import captune.cli
result = CliRunner().invoke(captune.cli.cli, ["metrics", "-p", sys.argv[1], "-r", sys.argv[2], "--metrics", "bleu_4"])
assert result.exit_code == 0, result.output
print(sorted(m for m in sys.modules if m.startswith("captune.cli.")))
"""


def test_a_command_imports_only_its_own_cli_module(tmp_path):
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_text(json.dumps({"image_id": "a", "caption": "a red circle"}) + "\n")
    refs.write_text(json.dumps({"image_id": "a", "captions": ["a red circle", "a circle"]}) + "\n")
    out = subprocess.run([sys.executable, "-c", METRICS_RUN, str(preds), str(refs)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['captune.cli.metrics']"


def test_caption_and_evaluate_spell_the_captioner_options_alike():
    def captioner(name):
        return {p.opts[0]: (p.default, p.help) for p in cli.get_command(None, name).params
                if p.opts[0] in {"--model", "--adapter", "--decoding", "--prompt", "--batch-size", "--image-root",
                                 "--dtype"}}

    assert len(captioner("caption")) == 7 and captioner("caption") == captioner("evaluate")


def test_metrics_scores_with_the_collector_paused_and_restores_it(tmp_path, monkeypatch):
    import gc

    import captune.metrics

    seen = []
    monkeypatch.setattr(captune.metrics, "score_files", lambda *a, **k: seen.append(gc.isenabled()) or
                        captune.metrics.base.Scores({"bleu_4": 1.0}, [{}]))
    preds, refs = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    preds.write_text("{}\n")
    refs.write_text("{}\n")
    assert gc.isenabled()
    result = CliRunner().invoke(cli, ["metrics", "-p", str(preds), "-r", str(refs), "--json"])
    assert result.exit_code == 0, result.output
    assert seen == [False] and gc.isenabled()


QUICK_EXIT = """
import atexit, sys
from captune.cli import main

class Teardown:
    def __del__(self):
        print("freed at teardown")

kept = Teardown()
atexit.register(lambda: print("atexit ran"))
sys.argv = ["captune", *sys.argv[1:]]
main()
"""


def test_metrics_ends_its_process_without_the_teardown_but_with_atexit_and_all_output(tmp_path):
    preds, refs, per_item = tmp_path / "p.jsonl", tmp_path / "r.jsonl", tmp_path / "items.jsonl"
    preds.write_text(json.dumps({"image_id": "a", "caption": "a red circle"}) + "\n")
    refs.write_text(json.dumps({"image_id": "a", "captions": ["a red circle", "a circle"]}) + "\n")
    run = [sys.executable, "-c", QUICK_EXIT, "metrics", "-p", str(preds), "-r", str(refs), "--metrics", "bleu_1"]
    out = subprocess.run([*run, "--json", "--per-item", str(per_item)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    scores, after = out.stdout.rsplit("}", 1)
    assert json.loads(scores + "}")["bleu_1"] > 0 and after.strip() == "atexit ran"
    assert json.loads(per_item.read_text())["image_id"] == "a"
    # without the quick exit (another command, or a failing metrics run) the teardown runs as usual
    version = subprocess.run([sys.executable, "-c", QUICK_EXIT, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and "freed at teardown" in version.stdout
    failed = subprocess.run([*run[:-2], "--metrics", "no_such_metric"], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "unknown metric" in failed.stderr and "freed at teardown" in failed.stdout
