"""The study file: what is stored (hashes, orders, ratings by system), upserts, overlap, inputs."""

import json
import sqlite3

import pytest
from study_helpers import SYSTEMS, make_study, write_systems

from captune.errors import CaptuneError
from captune.review import Study, create_study
from captune.review.store import RatingError


def full_scores(study, slots=("A", "B"), value=4):
    return {s: {c: value for c in study.criteria} for s in slots}


def rater_id(study, name):
    with study.read() as db:
        return db.execute("SELECT id FROM raters WHERE name = ?", (name,)).fetchone()[0]


def test_create_stores_items_captions_and_only_token_hashes(tmp_path):
    made = make_study(tmp_path, pairwise=True)
    study = Study(made["study"])
    assert made["items"] == 6 and study.counts()["captions"] == 12 and study.counts()["assignments"] == 12
    raw = (tmp_path / "study" / "review.sqlite").read_bytes()
    for token in [*made["raters"].values(), made["admin"]]:
        assert token.encode() not in raw and study.login(token) is not None
    assert study.login("not-a-token") is None
    with study.read() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_each_rater_has_a_stable_order_of_items_and_captions_and_raters_differ(tmp_path):
    made = make_study(tmp_path, n_items=12, raters=["alice", "bob"])
    study = Study(made["study"])
    with study.read() as db:
        orders = {name: db.execute("SELECT a.item_id, a.slots FROM assignments a JOIN raters r ON r.id = a.rater_id "
                                   "WHERE r.name = ? ORDER BY a.position", (name,)).fetchall()
                  for name in ("alice", "bob")}
    assert [i for i, _ in orders["alice"]] != [i for i, _ in orders["bob"]]
    assert sorted(orders["alice"]) != sorted(orders["bob"])  # slot orders differ on some item
    again = make_study(tmp_path / "again", n_items=12, raters=["alice", "bob"])
    with Study(again["study"]).read() as db:
        assert db.execute("SELECT a.item_id, a.slots FROM assignments a JOIN raters r ON r.id = a.rater_id "
                          "WHERE r.name = 'alice' ORDER BY a.position").fetchall() == orders["alice"]


def test_rating_again_replaces_the_earlier_rating(tmp_path):
    study = Study(make_study(tmp_path, pairwise=True)["study"])
    alice = rater_id(study, "alice")
    item = study.next_item(alice)["item_id"]
    study.save_rating(alice, item, full_scores(study, value=2), "A", "first")
    study.save_rating(alice, item, full_scores(study, value=5), "tie", "second")
    rows = [r for r in study.export_rows() if r["item_id"] == item]
    assert len(rows) == 2 * len(study.criteria)
    assert {r["score"] for r in rows} == {5} and {r["preferred"] for r in rows} == {"tie"}
    assert {r["comment"] for r in rows} == {"second"} and set(rows[0]) == {
        "rater", "item_id", "image", "system", "criterion", "score", "preferred", "comment", "rated_at"}
    assert {r["system"] for r in rows} == set(SYSTEMS)
    assert study.counts()["judgements"] == 1
    with study.write() as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO ratings SELECT * FROM ratings LIMIT 1")


def test_ratings_are_stored_by_system_through_the_raters_slot_order(tmp_path):
    study = Study(make_study(tmp_path, pairwise=True)["study"])
    alice = rater_id(study, "alice")
    nxt = study.next_item(alice)
    system_of_a = study.systems()[study.slots(alice, nxt["item_id"])[0] - 1]
    scores = {"A": {c: 5 for c in study.criteria}, "B": {c: 1 for c in study.criteria}}
    study.save_rating(alice, nxt["item_id"], scores, "A")
    rows = study.export_rows()
    assert {r["system"] for r in rows if r["score"] == 5} == {system_of_a}
    assert {r["preferred"] for r in rows} == {system_of_a}
    caption_a = nxt["captions"][0]["text"]
    with study.read() as db:
        sid = db.execute("SELECT id FROM systems WHERE name = ?", (system_of_a,)).fetchone()[0]
        assert db.execute("SELECT text FROM captions WHERE item_id = ? AND system_id = ?",
                          (nxt["item_id"], sid)).fetchone()[0] == caption_a


def test_a_rating_that_does_not_fit_names_every_field(tmp_path):
    study = Study(make_study(tmp_path, pairwise=True)["study"])
    alice = rater_id(study, "alice")
    item = study.next_item(alice)["item_id"]
    bad = full_scores(study)
    bad["A"]["relevance"] = 6
    bad["C"] = {}
    del bad["B"]["style"]
    with pytest.raises(RatingError) as e:
        study.save_rating(alice, item, bad, None)
    locs = {".".join(loc) for loc, _ in e.value.problems}
    assert locs == {"scores.A.relevance", "scores.C", "scores.B.style", "preferred"}
    with pytest.raises(KeyError):
        study.save_rating(alice, "img_999", full_scores(study), "A")
    assert study.counts()["ratings"] == 0


def test_next_item_skips_to_the_end_and_ends_with_none(tmp_path):
    study = Study(make_study(tmp_path, n_items=3)["study"])
    bob = rater_id(study, "bob")
    first = study.next_item(bob)["item_id"]
    assert study.skip(bob, first) and study.next_item(bob)["item_id"] != first
    for _ in range(2):
        study.save_rating(bob, study.next_item(bob)["item_id"], full_scores(study), None)
    last = study.next_item(bob)
    assert last["item_id"] == first and last["progress"] == {"done": 2, "total": 3}
    study.save_rating(bob, first, full_scores(study), None)
    assert study.next_item(bob) is None


def test_overlap_shares_some_items_and_deals_out_the_rest(tmp_path):
    made = make_study(tmp_path, n_items=10, raters=["alice", "bob"], overlap=0.4)
    study = Study(made["study"])
    with study.read() as db:
        mine = {name: {r[0] for r in db.execute("SELECT item_id FROM assignments a JOIN raters r ON "
                                                "r.id = a.rater_id WHERE r.name = ?", (name,))}
                for name in ("alice", "bob")}
    shared = mine["alice"] & mine["bob"]
    assert len(shared) == 4 and len(mine["alice"]) == len(mine["bob"]) == 7
    assert len(mine["alice"] | mine["bob"]) == 10
    study.add_rater("carol")
    with study.read() as db:
        carol = {r[0] for r in db.execute("SELECT item_id FROM assignments a JOIN raters r ON r.id = a.rater_id "
                                          "WHERE r.name = 'carol'")}
    assert carol == shared
    with pytest.raises(CaptuneError, match="already exists"):
        study.add_rater("carol")


def test_items_draws_a_subset_and_errors_say_what_to_do(tmp_path):
    systems = write_systems(tmp_path / "src", 8)
    made = create_study(tmp_path / "s", systems, items=3, raters=["alice"])
    assert made["items"] == 3
    with pytest.raises(CaptuneError, match="exists"):
        create_study(tmp_path / "s", systems)
    with pytest.raises(CaptuneError, match="2 to 26 systems"):
        create_study(tmp_path / "one", {"only": systems[SYSTEMS[0]]})
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"image_id": "elsewhere", "caption": "x"}) + "\n")
    with pytest.raises(CaptuneError, match="captioned by every system"):
        create_study(tmp_path / "none", {"a": systems[SYSTEMS[0]], "b": other})
    with pytest.raises(CaptuneError, match="no study here"):
        Study(tmp_path / "missing")


def test_posts_from_two_agent_runs_are_items_with_their_montages(tmp_path):
    from PIL import Image

    runs = {}
    for mode in ("template", "model"):
        run = tmp_path / mode
        (run / "posts").mkdir(parents=True)
        lines = []
        for k in range(3):
            Image.new("RGB", (24, 24), (k * 60, 10, 10)).save(run / "posts" / f"p{k}.jpg")
            lines.append({"post_id": f"post_{k}", "images": [f"a/{k}.jpg"], "cover": f"a/{k}.jpg",
                          "caption": f"{mode} caption {k}", "files": {"montage": f"posts/p{k}.jpg"}})
        runs[mode] = run / "posts.jsonl"
        runs[mode].write_text("".join(json.dumps(line) + "\n" for line in lines))
    made = create_study(tmp_path / "study", runs, raters=["alice"])
    study = Study(made["study"])
    assert made["items"] == 3
    assert study.image_path("post_1", None) == (tmp_path / "template" / "posts" / "p1.jpg").resolve()  # the first system's
    with study.read() as db:
        assert {r[0] for r in db.execute("SELECT kind FROM items")} == {"post"}
