"""Open a sweep's report in headless Chromium: sections, plots loaded, tables within the page, a clean
console, nothing fetched; screenshot in test-artifacts/agent-sweep-report.png."""

import pytest
from file_page import file_page

from captune.agent.sweep import expand, parse_grid, run_sweep
from captune.demo.agent import CONFIG
from captune.demo.photos import generate_photos
from captune.io import read_json


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-sweep")
    generate_photos(root / "dump", n_events=3, n_images=40, seed=0)
    combos = expand(parse_grid(["cluster.k=auto,5", "cluster.max_images_per_post=2,6",
                                "captioner.mode=template,model"]))
    sweep = run_sweep(combos, root / "dump" / "photos", root / "out", config=CONFIG,
                      truth=read_json(root / "dump" / "truth.json"), resamples=200)
    return root / "out" / "report.html", sweep


@pytest.mark.browser
def test_sweep_report_renders_in_chromium(sweep_report, chromium):
    html, sweep = sweep_report
    with file_page(chromium, html, "agent-sweep-report.png") as opened:
        page = opened.page
        headings = page.locator("h2").all_inner_texts()
        plots = page.locator("figure img").evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    problems, requests = opened.problems, opened.requests
    assert headings[:3] == ["Findings", "CLIPScore by cluster.k, cluster.max_images_per_post, captioner.mode",
                            "Plots"]
    assert "Captioner modes on identical posts (paired)" in headings and "Stage metrics per run" in headings
    assert len(plots) == 2 and all(done and w > 300 for done, w in plots), plots  # silhouette, images per post
    assert overflow <= 0  # wide tables scroll in their own box, not the page
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert len(sweep.rows) == 8
