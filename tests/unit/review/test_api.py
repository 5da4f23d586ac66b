"""The JSON API and pages through FastAPI's TestClient: the flow, blindness, and the security cases."""

import pytest
from fastapi.testclient import TestClient
from study_helpers import SYSTEMS, make_study

from captune.review.app import COOKIE, create_app

ROUTES = [("GET", "/"), ("GET", "/admin"), ("GET", "/api/next"), ("POST", "/api/ratings"), ("POST", "/api/skip"),
          ("POST", "/api/logout"), ("GET", "/api/admin/summary"), ("GET", "/api/admin/export"),
          ("GET", "/images/img_000")]


@pytest.fixture
def served(tmp_path):
    made = make_study(tmp_path, pairwise=True)
    return made, create_app(made["study"])


def signed_in(app, token):
    client = TestClient(app)
    r = client.post("/api/login", json={"token": token})
    assert r.status_code == 200
    return client, r.json()["csrf"]


def scores(item, value=4):
    return {c["slot"]: {k: value for k in item["criteria"]} for c in item["captions"]}


def test_a_rater_rates_every_item_blind_and_is_told_when_done(served):
    made, app = served
    client, csrf = signed_in(app, made["raters"]["alice"])
    seen = []
    while (r := client.get("/api/next")).status_code == 200:
        item = r.json()
        assert set(item) == {"item_id", "image_url", "captions", "criteria", "pairwise", "progress"}
        assert [c["slot"] for c in item["captions"]] == ["A", "B"] and item["pairwise"] is True
        assert not any(name in r.text for name in SYSTEMS)
        assert client.get(item["image_url"]).headers["content-type"] == "image/png"
        assert item["progress"] == {"done": len(seen), "total": 6}
        ok = client.post("/api/ratings", json={"item_id": item["item_id"], "scores": scores(item), "preferred": "B",
                                               "comment": "fine"}, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200
        seen.append(item["item_id"])
    assert r.status_code == 204 and len(set(seen)) == 6
    page = client.get("/")
    assert page.status_code == 200 and not any(name in page.text for name in SYSTEMS)


def test_rating_an_item_again_upserts(served):
    made, app = served
    client, csrf = signed_in(app, made["raters"]["bob"])
    item = client.get("/api/next").json()
    for value in (1, 5):
        body = {"item_id": item["item_id"], "scores": scores(item, value), "preferred": "tie"}
        assert client.post("/api/ratings", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    admin, _ = signed_in(app, made["admin"])
    summary = admin.get("/api/admin/summary").json()
    assert summary["ratings"] == 1
    assert {s: v["relevance"]["mean"] for s, v in summary["per_system"].items()} == {s: 5.0 for s in SYSTEMS}


def test_agreement_and_ranking_reach_the_admin(served):
    made, app = served
    for rater in ("alice", "bob"):
        client, csrf = signed_in(app, made["raters"][rater])
        while (r := client.get("/api/next")).status_code == 200:
            item = r.json()
            body = {"item_id": item["item_id"], "scores": scores(item, 3 + (item["item_id"] < "img_003")),
                    "preferred": "A"}
            client.post("/api/ratings", json=body, headers={"X-CSRF-Token": csrf})
    admin, _ = signed_in(app, made["admin"])
    summary = admin.get("/api/admin/summary", params={"resamples": 100}).json()
    assert summary["ratings"] == 12 and [p["done"] for p in summary["progress"]] == [6, 6]
    relevance = summary["agreement"]["relevance"]
    assert relevance["krippendorff_alpha"] == pytest.approx(1.0) and relevance["percent_agreement"] == 1.0
    assert relevance["fleiss_kappa"] == pytest.approx(1.0) and relevance["units"] == 12
    assert set(summary["bradley_terry"]["strength"]) == set(SYSTEMS)
    page = admin.get("/admin")
    assert page.status_code == 200 and "Krippendorff" in page.text and "1.000" in page.text
    export = admin.get("/api/admin/export")
    assert export.status_code == 200 and len(export.text.splitlines()) == 12 * 2 * 3


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_route_answers_without_a_session(served, method, path):
    _, app = served
    r = TestClient(app).request(method, path, json={})
    assert r.status_code == 401
    assert TestClient(app).get("/login").status_code == 200  # the sign-in page is the one way in


def test_a_rater_cannot_reach_admin_routes_and_the_admin_rates_nothing(served):
    made, app = served
    client, _ = signed_in(app, made["raters"]["alice"])
    for path in ("/admin", "/api/admin/summary", "/api/admin/export"):
        assert client.get(path).status_code == 403
    admin, _ = signed_in(app, made["admin"])
    assert admin.get("/api/next").status_code == 403
    assert admin.get("/", follow_redirects=False).headers["location"] == "/admin"


def test_posts_without_the_csrf_token_are_refused(served):
    made, app = served
    client, csrf = signed_in(app, made["raters"]["alice"])
    item = client.get("/api/next").json()
    body = {"item_id": item["item_id"], "scores": scores(item), "preferred": "A"}
    assert client.post("/api/ratings", json=body).status_code == 403
    assert client.post("/api/ratings", json=body, headers={"X-CSRF-Token": csrf + "x"}).status_code == 403
    assert client.post("/api/skip", json={"item_id": item["item_id"]}).status_code == 403
    assert client.post("/api/logout").status_code == 403
    assert client.get("/api/next").json()["progress"]["done"] == 0


def test_the_session_cookie_is_httponly_and_samesite_strict_and_logout_ends_it(served):
    made, app = served
    client = TestClient(app)
    r = client.post("/api/login", json={"token": made["raters"]["alice"]})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert client.post("/api/logout", headers={"X-CSRF-Token": r.json()["csrf"]}).status_code == 200
    client.cookies.set(COOKIE, r.cookies[COOKIE])
    assert client.get("/api/next").status_code == 401
    assert TestClient(app).post("/api/login", json={"token": "guess"}).status_code == 401


def test_bodies_are_validated_with_the_field_named(served):
    made, app = served
    client, csrf = signed_in(app, made["raters"]["alice"])
    item = client.get("/api/next").json()
    bad = scores(item)
    bad["A"]["fluency"] = 0
    bad["Z"] = {"fluency": 3}
    r = client.post("/api/ratings", json={"item_id": item["item_id"], "scores": bad, "preferred": "A"},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    assert {tuple(d["loc"]) for d in r.json()["detail"]} == {("body", "scores", "A", "fluency"),
                                                             ("body", "scores", "Z")}
    r = client.post("/api/ratings", json={"item_id": item["item_id"], "scores": {"A": {"fluency": "4"}},
                                          "extra": 1}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    assert {tuple(d["loc"]) for d in r.json()["detail"]} >= {("body", "scores", "A", "fluency"), ("body", "extra")}


def test_a_rater_sees_only_their_items(tmp_path):
    made = make_study(tmp_path, n_items=6, overlap=0.0)
    app = create_app(made["study"])
    alice, csrf = signed_in(app, made["raters"]["alice"])
    bob, _ = signed_in(app, made["raters"]["bob"])
    bobs = bob.get("/api/next").json()
    assert alice.get(bobs["image_url"]).status_code == 404
    r = alice.post("/api/ratings", json={"item_id": bobs["item_id"], "scores": scores(bobs), "preferred": None},
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 404
    assert alice.post("/api/skip", json={"item_id": bobs["item_id"]}, headers={"X-CSRF-Token": csrf}).status_code == 404


@pytest.mark.parametrize("path", ["/images/../../../../etc/passwd", "/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                  "/images/%2Fetc%2Fpasswd", "/images//etc/passwd", "/images/..%5c..%5cetc%5cpasswd",
                                  "/images/img_000%00", "/images/" + "%2e%2e/" * 8 + "etc/passwd"])
def test_the_image_route_takes_item_ids_only(served, path):
    made, app = served
    client, _ = signed_in(app, made["raters"]["alice"])
    r = client.get(path)
    assert r.status_code == 404 and b"root:" not in r.content


def test_oversized_bodies_are_refused(served):
    made, app = served
    client, csrf = signed_in(app, made["raters"]["alice"])
    big = b'{"item_id": "' + b"x" * 70_000 + b'"}'
    r = client.post("/api/ratings", content=big, headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert r.status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 4096

    r = client.post("/api/ratings", content=chunks(), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 413
    assert client.post("/api/login", content=big, headers={"Content-Type": "application/json"}).status_code == 413


def test_a_session_over_the_rate_limit_gets_429(tmp_path):
    made = make_study(tmp_path)
    app = create_app(made["study"], rate=0.01, burst=3)
    client, _ = signed_in(app, made["raters"]["alice"])
    codes = [client.get("/api/next").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    other, _ = signed_in(app, made["raters"]["bob"])  # per session: bob is not slowed by alice
    assert other.get("/api/next").status_code == 200


def test_pages_carry_a_nonce_csp_and_no_system_name(served):
    made, app = served
    client, _ = signed_in(app, made["raters"]["alice"])
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'nonce-" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert made["raters"]["alice"] not in r.text and not any(name in r.text for name in SYSTEMS)


def test_a_class_signing_in_at_once_from_one_address_is_not_held_back(tmp_path):
    made = make_study(tmp_path, raters=[f"r{k}" for k in range(12)], n_items=2)
    app = create_app(made["study"])
    codes = [TestClient(app).post("/api/login", json={"token": t}).status_code for t in made["raters"].values()]
    assert codes == [200] * 12  # the first limit (10 per address) refused the last two
