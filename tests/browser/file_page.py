"""Open a local HTML file in headless Chromium, recording console problems and every request."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Opened:
    page: object
    problems: list[str] = field(default_factory=list)
    """Console errors and warnings, and page errors."""
    requests: list[str] = field(default_factory=list)


@contextmanager
def file_page(chromium: str, html: Path, screenshot: str):
    """Yield the loaded page; on leaving, a full-page screenshot goes to ``test-artifacts/<screenshot>``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        opened = Opened(browser.new_page(viewport={"width": 1200, "height": 900}))
        page = opened.page
        page.on("console", lambda m: opened.problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: opened.problems.append(str(e)))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        try:
            yield opened
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
        finally:
            browser.close()
