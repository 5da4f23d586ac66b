"""Open the agent's report of a demo run in headless Chromium: the sections, every post's montage
loaded, nothing fetched from the network, a clean console; screenshot in test-artifacts/agent-report.png."""


import pytest
from test_report_browser import ARGS, ARTIFACTS

from captune.demo.agent import run_demo_agent


@pytest.fixture(scope="module")
def agent_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent-report")
    run = run_demo_agent(out, n_images=40, n_events=3)
    return out / "report.html", run


@pytest.mark.browser
def test_agent_report_renders_in_chromium(agent_report, chromium):
    from playwright.sync_api import sync_playwright

    html, run = agent_report
    problems, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        headings = page.locator("h2").all_inner_texts()
        montages = page.locator(".post img").evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "agent-report.png"), full_page=True)
        browser.close()
    assert headings == ["Stages", "Stage metrics against the truth file", "Events", "Posts", "Left out"]
    assert len(montages) == len(run.posts) > 0 and all(done and w > 100 for done, w in montages), montages
    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
