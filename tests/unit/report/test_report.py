"""The report of a tiny run: self-contained HTML, Markdown with its figures, the numbers it shows,
evaluations-only reports, human ratings, the model card (whose snippet runs) and the CLI."""

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from captune.cli import cli
from captune.errors import CaptuneError
from captune.evaluate import compare
from captune.report import build_report
from captune.report.text import interval, num

SECTIONS = [
    "summary",
    "data",
    "setup",
    "training",
    "results",
    "decoding",
    "examples",
    "errors",
    "ratings",
    "appendix",
]


@pytest.fixture(scope="module")
def report(report_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report([report_run["run"]], out=out, resamples=300), out


def test_html_is_self_contained_with_every_section(report):
    written, _out = report
    html = Path(written["html"]).read_text()
    for section in SECTIONS:
        assert f'<h2 id="{section}">' in html
    assert not re.search(r'(?:src|href)="(?!data:|#)', html), "every image and link must be inline"
    assert "<script" not in html and "<link" not in html and "@import" not in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 5 + 4  # loss, validation metrics, deltas, errors, decodings + 4 thumbnails
    assert "finetuned against base" in html and "Fine-tuning" in html


def test_markdown_links_figures_written_next_to_it(report):
    written, out = report
    md = Path(written["markdown"]).read_text()
    links = re.findall(r"\]\((report_files/[^)]+\.png)\)", md)
    assert {"report_files/loss.png", "report_files/val_metrics.png", "report_files/errors.png"} <= set(links)
    for link in links:
        assert (out / link).read_bytes()[:4] == b"\x89PNG"
    for heading in (
        "## Summary",
        "## Data",
        "## Fine-tuning set-up",
        "## Training curves",
        "## Results",
        "## Decoding comparison",
        "## Examples",
        "## Error analysis",
        "## Human ratings",
        "## Configuration",
    ):
        assert heading in md


def test_the_numbers_shown_are_those_of_compare_and_the_run(report, report_run):
    written, _ = report
    md = Path(written["markdown"]).read_text()
    pair = compare([report_run["base"], report_run["finetuned"]], resamples=300)
    cider = pair["metrics"]["cider"]
    assert f"| CIDEr | {num(cider['a'])} | {num(cider['b'])} |" in md and interval(cider) in md
    assert "| train | " in md and "| 16 |" in md  # 16 training images
    assert "trainable parameters" in md and "8 optimizer steps" in md
    assert "Split by image, seed 0: 16 train, 7 val, 9 test images." in md  # near-duplicates kept together
    split = json.loads((report_run["run"].parent / "splits" / "split.json").read_text())["grouping"]
    assert split["grouped_units"] > 0  # the world plants near-duplicates
    assert (f"{split['grouped_units']} groups of near-duplicate or grouped images (the largest holds "
            f"{split['largest_unit']}) were kept in one split each") in md
    assert "`beam(n=5)`" in md and "`top_p(p=0.9,t=0.7)`" in md


def test_ratings_are_summarised_per_model_and_paired(report):
    written, _ = report
    md = Path(written["markdown"]).read_text()
    # 9 test images: base rates 1,2,1,2,... (mean 13/9); finetuned 3,4,5,3,4,5,... (mean 4)
    assert "| base | 9 | 9 | 1.44 |" in md and "| finetuned | 9 | 9 | 4 |" in md
    assert "finetuned against base on 9 shared images: +2.56" in md


def test_a_report_of_evaluations_only(report_run, tmp_path):
    with pytest.raises(CaptuneError, match="--out DIR"):
        build_report([report_run["base"], report_run["finetuned"]])
    written = build_report([report_run["finetuned"], report_run["base"]], out=tmp_path, resamples=50)
    html = Path(written["html"]).read_text()
    assert "base against finetuned" in html and "No training run was given" in html
    with pytest.raises(CaptuneError, match="neither a training run"):
        build_report([tmp_path], out=tmp_path)


def test_a_run_without_evaluations_says_how_to_add_them(report_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report_run["run"], run, ignore=shutil.ignore_patterns("eval"))
    html = Path(build_report([run])["html"]).read_text()
    assert "No evaluation yet" in html and "captune evaluate --model BASE" in html
    assert "Validation loss went from" in html and 'id="training"' in html


def test_model_card_front_matter_and_sections(report_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report_run["run"], run)
    written = build_report([run], model_card=True, resamples=100)
    card = Path(written["model_card"]).read_text()
    assert Path(written["model_card"]) == run / "checkpoints" / "best" / "README.md"
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "tiny-blip2-opt" and front["library_name"] == "peft"
    assert {"bleu", "cider", "rouge"} <= set(front["metrics"]) and "image-captioning" in front["tags"]
    assert front["datasets"] == ["splits/train.jsonl", "splits/val.jsonl"]
    for heading in (
        "## Training configuration",
        "## Generation configuration",
        "## Checkpoint selection",
        "## Evaluation: base model against this model",
        "## Strengths and trade-offs",
        "## Usage",
    ):
        assert heading in card
    assert "PeftModel.from_pretrained(model, checkpoint)" in card and "Blip2Processor.from_pretrained" in card
    assert "Fine-tuning" in card.split("## Training configuration")[0]  # the bottom line up front


def test_model_card_snippet_reproduces_captune_captions(report_run, tmp_path):
    from captune.models.tiny import build_tiny_blip2

    run = tmp_path / "run"
    shutil.copytree(report_run["run"], run)
    base = tmp_path / "base"  # the same tiny weights, saved where from_pretrained can read them
    model, processor = build_tiny_blip2("opt")
    model.save_pretrained(base)
    processor.save_pretrained(base)
    meta_path = run / "checkpoints" / "best" / "captune.json"
    meta_path.write_text(json.dumps(json.loads(meta_path.read_text()) | {"base_model": str(base)}))
    card = Path(build_report([run], model_card=True, resamples=20)["model_card"]).read_text()
    image = min((report_run["world"] / "images").iterdir())
    assert snippet_caption(card, image) == captune_caption(image, run / "checkpoints" / "best", tmp_path)


def snippet_caption(card: str, image: Path) -> str:
    """What the model card's Python snippet prints for ``image``."""
    code = re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1).replace("photo.jpg", str(image))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})  # noqa: S102 (the model card's own snippet, as a reader would run it)
    return " ".join(printed.getvalue().split())


def captune_caption(image: Path, adapter: Path, tmp_path: Path) -> str:
    """captune's own caption of ``image`` with the checkpoint ``adapter``."""
    from captune.generate import caption_images

    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(image, folder / image.name)
    caption_images(folder, tmp_path / "p.jsonl", adapter=adapter, postprocess=False)
    return json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])["caption"]


def test_cli_report_json(report_run, tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "report",
            str(report_run["base"]),
            str(report_run["finetuned"]),
            "--out",
            str(tmp_path),
            "--resamples",
            "50",
            "--examples",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert Path(out["html"]).exists() and Path(out["markdown"]).exists()
    assert len(list((tmp_path / "report_files").glob("sample_*.png"))) == 2
    res = CliRunner().invoke(cli, ["report", str(report_run["base"]), "--model-card", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "needs the training run" in res.output


def test_model_card_snippet_loads_parts_trained_in_full(report_run, tmp_path):
    """A Q-Former trained in full beside a LoRA language model: the snippet loads both."""
    import torch
    import yaml

    from captune.models.peft import FULL_PARTS_FILE, FinetuneConfig, apply_finetuning
    from captune.models.tiny import build_tiny_blip2
    from captune.train.checkpoint import save_checkpoint
    from captune.train.config import TrainConfig

    run = tmp_path / "run"
    shutil.copytree(report_run["run"], run)
    base = tmp_path / "base"
    model, processor = build_tiny_blip2("opt")
    model.save_pretrained(base)
    processor.save_pretrained(base)
    tuned = apply_finetuning(build_tiny_blip2("opt")[0], FinetuneConfig(qformer="full", lm="lora"))
    with torch.no_grad():  # stand-in for training: move the full part and the adapters
        generator = torch.Generator().manual_seed(0)
        for name, p in tuned.named_parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn(p.shape, generator=generator))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["finetune"] |= {"qformer": "full", "lm": "lora"}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    best = run / "checkpoints" / "best"
    meta = json.loads((best / "captune.json").read_text()) | {"base_model": str(base)}
    meta.pop("kind", None)
    shutil.rmtree(best)
    save_checkpoint(best, tuned, processor, TrainConfig.model_validate(config), meta)
    assert (best / FULL_PARTS_FILE).exists()

    card = Path(build_report([run], model_card=True, resamples=20)["model_card"]).read_text()
    assert "full_parts.safetensors" in card and "(qformer)" in card
    image = min((report_run["world"] / "images").iterdir())
    assert snippet_caption(card, image) == captune_caption(image, best, tmp_path)


def test_what_trains_names_the_parts_of_the_runs_family(report, report_run):
    from captune.report.sections import model_parts

    start = next(json.loads(line) for line in (report_run["run"] / "metrics.jsonl").read_text().splitlines()
                 if json.loads(line).get("event") == "start")
    assert start["parts"] == ["vision", "qformer", "lm"]  # a BLIP-2 run
    written, _ = report
    html = Path(written["html"]).read_text()
    row = re.search(r"<th>what trains</th><td>(.*?)</td>", html).group(1)
    assert row.startswith("vision encoder: ") and ", Q-Former: " in row and ", language model: " in row
    assert "projector" not in row
    ft = {"vision": "frozen", "qformer": "frozen", "projector": "full", "lm": "lora"}
    assert model_parts(ft, {"parts": ["vision", "projector", "lm"]}) == {"vision": "frozen", "projector": "full",
                                                                         "lm": "lora"}
    assert list(model_parts(ft, {})) == ["vision", "qformer", "lm"]  # runs from before the start recorded parts
