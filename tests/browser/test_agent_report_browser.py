"""Open the agent's report of a demo run in headless Chromium: the sections, every post's montage
loaded, nothing fetched from the network, a clean console; screenshot in test-artifacts/agent-report.png."""


import pytest
from file_page import file_page

from captune.demo.agent import run_demo_agent


@pytest.fixture(scope="module")
def agent_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent-report")
    run = run_demo_agent(out, n_images=40, n_events=3)
    return out / "report.html", run


@pytest.mark.browser
def test_agent_report_renders_in_chromium(agent_report, chromium):
    html, run = agent_report
    with file_page(chromium, html, "agent-report.png") as opened:
        page = opened.page
        headings = page.locator("h2").all_inner_texts()
        montages = page.locator(".post img").evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    problems, requests = opened.problems, opened.requests
    assert headings == ["Stages", "Stage metrics against the truth file", "Events", "Posts", "Left out"]
    assert len(montages) == len(run.posts) > 0 and all(done and w > 100 for done, w in montages), montages
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
