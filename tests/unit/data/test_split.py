import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captune.data.records import CaptionRecord, write_records
from captune.data.split import parse_ratios, split_counts, split_file, split_records
from captune.errors import CaptuneError

RATIOS = st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.9, 0.1), (0.5, 0.5), (0.6, 0.2, 0.2), (1 / 3,) * 3])


def make_records(ids, events=None):
    events = events or ["E"]
    return [CaptionRecord(i, f"/photos/{i}.jpg", [f"caption {i}"], {"event": events[n % len(events)]})
            for n, i in enumerate(ids)]


def membership(splits):
    return {r.image_id: name for name, recs in splits.items() for r in recs}


ids_strategy = st.lists(st.text("abcdefghij0123456789", min_size=1, max_size=8), min_size=0, max_size=150, unique=True)


@settings(max_examples=60, deadline=None)
@given(ids=ids_strategy, ratios=RATIOS, seed=st.integers(0, 2**32))
def test_splits_partition_images_and_follow_ratios(ids, ratios, seed):
    records = make_records(ids)
    splits = split_records(records, ratios, seed)
    assert list(splits) == ["train", "val", "test"][: len(ratios)]
    seen = [r.image_id for recs in splits.values() for r in recs]
    assert sorted(seen) == sorted(ids)  # every image exactly once
    n = len(ids)
    # Within one of n * ratio, unless filling an otherwise empty split had to take units away.
    slack = 1 if all(n * r >= 1 for r in ratios) else len(ratios)
    for (name, recs), ratio in zip(splits.items(), ratios):
        assert abs(len(recs) - n * ratio) <= slack + 1e-9, (name, len(recs), n, ratio)
        assert all(r.meta["split"] == name for r in recs)
        if n >= len(ratios):
            assert recs, f"{name} is empty with {n} records"
    assert split_records(records, ratios, seed) == splits  # deterministic for a fixed seed


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.integers(0, 10**6), min_size=20, max_size=120, unique=True),
       extra=st.lists(st.integers(10**6 + 1, 2 * 10**6), min_size=1, max_size=10, unique=True),
       ratios=RATIOS, seed=st.integers(0, 1000))
def test_adding_records_moves_few_existing_ones(ids, extra, ratios, seed):
    before = membership(split_records(make_records(map(str, ids)), ratios, seed))
    after = membership(split_records(make_records(list(map(str, ids)) + list(map(str, extra))), ratios, seed))
    moved = sum(before[i] != after[i] for i in before)
    assert moved <= (len(ratios) - 1) * (len(extra) + 1)


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(10, 80), min_size=1, max_size=4), ratios=RATIOS, seed=st.integers(0, 1000))
def test_stratification_keeps_each_stratum_proportions(sizes, ratios, seed):
    records = []
    for s, size in enumerate(sizes):
        records += [CaptionRecord(f"s{s}-{k}", f"/p/s{s}-{k}.jpg", ["c"], {"event": f"ev{s}"}) for k in range(size)]
    splits = split_records(records, ratios, seed, stratify="event")
    for s, size in enumerate(sizes):
        for (name, recs), ratio in zip(splits.items(), ratios):
            got = sum(r.meta["event"] == f"ev{s}" for r in recs)
            assert abs(got - size * ratio) <= 2, (s, name, got, size * ratio)


def test_same_image_under_two_ids_stays_in_one_split():
    records = make_records([str(i) for i in range(60)])
    records += [CaptionRecord(f"alias-{i}", f"/photos/{i}.jpg", ["again"], {}) for i in range(60)]
    splits = split_records(records, "0.5,0.5", seed=3)
    where = membership(splits)
    assert all(where[str(i)] == where[f"alias-{i}"] for i in range(60))
    assert len(splits["train"]) == 60


def test_seed_changes_membership_and_order_is_kept():
    records = make_records([f"img{i:03d}" for i in range(100)])
    a, b = split_records(records, "0.8,0.2", 0), split_records(records, "0.8,0.2", 1)
    assert membership(a) != membership(b)
    assert [r.image_id for r in a["train"]] == sorted(r.image_id for r in a["train"])


@pytest.mark.parametrize(
    "text, message",
    [("0.8,0.1", "sum to 1"), ("1", "expected 2"), ("0.5,0.3,0.1,0.1", "expected 2"), ("a,b", "numbers"),
     ("1.2,-0.2", "negative")],
)
def test_bad_ratios(text, message):
    with pytest.raises(CaptuneError, match=message):
        parse_ratios(text)


def test_ratio_sum_tolerance_and_counts():
    assert parse_ratios("0.7,0.15,0.15000001") == {"train": 0.7, "val": 0.15, "test": 0.15000001}
    assert split_counts(10, [0.7, 0.15, 0.15]) == [7, 2, 1]
    assert split_counts(3, [0.98, 0.01, 0.01]) == [1, 1, 1]
    assert split_counts(2, [0.8, 0.1, 0.1]) == [1, 1, 0]
    assert split_counts(5, [1.0, 0.0, 0.0]) == [5, 0, 0]


def test_split_file_writes_splits_and_summary(tmp_path):
    write_records(tmp_path / "records.jsonl", make_records([f"i{k}" for k in range(20)], events=["A", "B"]))
    result = split_file(tmp_path / "records.jsonl", tmp_path / "splits", "0.8,0.1,0.1", 7, "event")
    summary = json.loads((tmp_path / "splits" / "split.json").read_text())
    assert summary["counts"] == {"train": 16, "val": 2, "test": 2} == {k: len(v) for k, v in result.splits.items()}
    assert (summary["seed"], summary["ratios"], summary["stratify"]) == (7, {"train": 0.8, "val": 0.1, "test": 0.1}, "event")
    assert summary["strata"] == {"A": {"train": 8, "val": 1, "test": 1}, "B": {"train": 8, "val": 1, "test": 1}}
    lines = (tmp_path / "splits" / "val.jsonl").read_text().splitlines()
    assert [json.loads(x)["meta"]["split"] for x in lines] == ["val", "val"]


def test_split_files_keep_relative_images_resolvable(tmp_path):
    from captune.data.records import CaptionRecord, read_records, write_records
    from captune.data.split import split_file

    (tmp_path / "images").mkdir()
    recs = [CaptionRecord(f"i{k}", f"images/i{k}.png", ["a cap"]) for k in range(10)]
    write_records(tmp_path / "all.jsonl", recs)
    split_file(tmp_path / "all.jsonl", tmp_path / "out", "0.8,0.2")
    moved = read_records(tmp_path / "out" / "train.jsonl")
    assert all(r.image == str(tmp_path / "images" / f"{r.image_id}.png") for r in moved)
