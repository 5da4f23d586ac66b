"""Open the report of a tiny run in headless Chromium (Debian's ``chromium`` on PATH): every section
heading and figure is there and rendered, nothing is fetched from the network, the console stays
clean, and a full-page screenshot goes to test-artifacts/report.png."""

import importlib.util
from pathlib import Path

import pytest
from file_page import ARTIFACTS, file_page

from captune.report import build_report

HEADINGS = [
    "Summary",
    "Data",
    "Fine-tuning set-up",
    "Training curves",
    "Results",
    "Decoding comparison",
    "Examples",
    "Error analysis",
    "Human ratings",
    "Configuration",
]


def _make_report_run():
    path = Path(__file__).resolve().parents[1] / "unit" / "report" / "report_run.py"
    spec = importlib.util.spec_from_file_location("report_run_for_browser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_report_run


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    run = _make_report_run()(tmp_path_factory.mktemp("browser-run"))
    return Path(build_report([run["run"]], resamples=200)["html"])


@pytest.mark.browser
def test_report_renders_in_chromium(report_html, chromium):
    with file_page(chromium, report_html, "report.png") as opened:
        page = opened.page
        headings = page.locator("h2").all_inner_texts()
        figures = page.locator("figure img")
        sizes = figures.evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        cards = page.locator(".card img").count()
    problems, requests = opened.problems, opened.requests
    assert headings == HEADINGS
    assert len(sizes) >= 5  # loss, validation metrics, change per metric, error flags, decodings
    assert all(done and w > 100 and h > 100 for done, w, h in sizes), sizes
    assert cards >= 4
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000
