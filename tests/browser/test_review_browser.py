"""Two raters and the admin use the review app in headless Chromium (Debian's ``chromium`` on
PATH) against a real server on loopback: each signs in with the invite link in a separate browser
context, rates with the keyboard or the mouse, sees the items in an order of their own and no
system name anywhere in the page; the admin page then shows the ratings and the agreement.
Screenshots go to test-artifacts/review-*.png."""

import importlib.util
import json
from pathlib import Path

import pytest
from file_page import ARGS, ARTIFACTS

from captune.review import Study
from captune.review.agreement import summarize

N_ITEMS = 5


def _helpers():
    path = Path(__file__).resolve().parents[1] / "unit" / "review" / "study_helpers.py"
    spec = importlib.util.spec_from_file_location("study_helpers_for_browser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    helpers = _helpers()
    made = helpers.make_study(tmp_path_factory.mktemp("review-browser"), n_items=N_ITEMS, pairwise=True,
                              criteria=["relevance", "fluency"])
    port = helpers.free_port()
    proc = helpers.start_server(made["study"], port)
    yield made, f"http://127.0.0.1:{port}", helpers.SYSTEMS
    proc.kill()
    proc.wait(10)


def _rate_all(page, base: str, token: str, keyboard: bool, shot: str) -> list[str]:
    """Sign in with the invite link and rate every item; returns the item ids in the order shown."""
    page.goto(f"{base}/login#token={token}")
    page.wait_for_url(f"{base}/")
    order = []
    while True:
        page.wait_for_selector("#done:visible, #rating:not([hidden]) .caption")
        if page.locator("#done").is_visible():
            break
        src = page.locator("#photo").get_attribute("src")
        assert src not in order
        order.append(src)
        if len(order) == 2:
            page.locator("#photo").evaluate("img => img.decode()")
            page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
        if keyboard:
            page.keyboard.type("4" * 4)  # 2 captions x 2 criteria, the cursor moves on after each score
            page.keyboard.press("=")
            assert page.locator("#prefer button.on").get_attribute("data-choice") == "tie"
            page.keyboard.press("a")
            assert page.locator("#prefer button.on").get_attribute("data-choice") == "A"
        else:
            for slot, score in (("A", "4"), ("B", "5")):  # alice gives 4 throughout: they agree on A only
                for button in page.locator(f".caption[data-slot='{slot}'] .score").all():
                    if button.inner_text() == score:
                        button.click()
            page.locator("#prefer button[data-choice='A']").click()
        page.wait_for_selector("#submit:enabled")
        page.keyboard.press("Enter") if keyboard else page.locator("#submit").click()
        page.wait_for_selector(f"#done:visible, #photo:not([src={json.dumps(src)}])")
    return order


@pytest.mark.browser
def test_two_raters_rate_blind_in_their_own_orders_and_the_admin_sees_agreement(server, chromium):
    from playwright.sync_api import sync_playwright

    made, base, systems = server
    ARTIFACTS.mkdir(exist_ok=True)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        orders, doms = {}, []
        for name, keyboard in (("alice", True), ("bob", False)):
            context = browser.new_context(viewport={"width": 1100, "height": 760})
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: doms.append(r.text()) if "/api/next" in r.url and r.status == 200 else None)
            orders[name] = _rate_all(page, base, made["raters"][name], keyboard, f"review-rater-{name}.png")
            doms.append(page.content())
            if name == "bob":
                page.screenshot(path=str(ARTIFACTS / "review-done.png"), full_page=True)
            context.close()
        admin = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
        admin.goto(f"{base}/login#token={made['admin']}")
        admin.wait_for_url(f"{base}/admin")
        progress = admin.locator("#progress td.n").all_inner_texts()
        agreement = admin.locator("#agreement tr").all_inner_texts()
        means = admin.locator("#means").inner_text()
        admin.screenshot(path=str(ARTIFACTS / "review-admin.png"), full_page=True)
        browser.close()
    assert len(orders["alice"]) == len(orders["bob"]) == N_ITEMS
    assert orders["alice"] != orders["bob"] and sorted(orders["alice"]) == sorted(orders["bob"])
    assert not [d for d in doms if any(name in d for name in systems)]
    assert progress == [str(N_ITEMS)] * 4  # rated and assigned, per rater
    expected = summarize(Study(made["study"]).export_rows(), 100)["agreement"]["relevance"]
    alpha, percent = f"{expected['krippendorff_alpha']:.3f}", f"{100 * expected['percent_agreement']:.0f}%"
    assert expected["percent_agreement"] == 0.5  # the (item, caption A) units agree, the B ones do not
    assert any(row.split("\t")[:3] == ["relevance", alpha, percent] for row in agreement), agreement
    assert all(name in means for name in systems)
    assert problems == []
