import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captune.data.near_duplicates import DEFAULT_THRESHOLD
from captune.data.records import CaptionRecord, with_absolute_images, write_records
from captune.data.split import group_records, parse_ratios, split_counts, split_file, split_records
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


# Near-duplicates and groups: what belongs together stays in one split.

def crossing_pairs(splits, pairs):
    """Pairs (a, b) of image ids that landed in different splits."""
    where = membership(splits)
    return [(a, b) for a, b in pairs if where[a] != where[b]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """300 shapes-world images with planted near-duplicate shots (meta.near_duplicate_of)."""
    from captune.demo.world import generate

    data = generate(tmp_path_factory.mktemp("world"), n_images=300, seed=3, style="plain")
    records = with_absolute_images(data.plain, data.out_dir)
    pairs = [(r.image_id, r.meta["near_duplicate_of"]) for r in records if "near_duplicate_of" in r.meta]
    return records, pairs


def without_links(records):
    return [CaptionRecord(r.image_id, r.image, r.captions,
                          {k: v for k, v in r.meta.items() if k != "near_duplicate_of"}) for r in records]


def test_planted_near_duplicates_stay_with_their_original(world):
    records, pairs = world
    assert len(pairs) >= 15
    # Without the links, a split by image scatters the re-shoots: the leak being guarded against.
    assert len(crossing_pairs(split_records(without_links(records), "0.6,0.2,0.2", 0), pairs)) >= 5
    splits = split_records(records, "0.6,0.2,0.2", 0)
    assert crossing_pairs(splits, pairs) == []
    assert sum(map(len, splits.values())) == len(records)


def test_meta_group_keeps_groups_together():
    records = [CaptionRecord(f"img{k:03d}", f"/p/img{k:03d}.jpg", ["c"], {"group": f"burst{k % 25}"})
               for k in range(100)]
    splits = split_records(records, "0.6,0.2,0.2", seed=5)
    where = membership(splits)
    for g in range(25):
        assert len({where[f"img{k:03d}"] for k in range(g, 100, 25)}) == 1, g
    assert [len(s) for s in splits.values()] == [60, 20, 20]  # 25 units of 4: 15 / 5 / 5


def test_perceptual_hash_grouping_finds_the_planted_near_duplicates(world):
    records, pairs = world
    unlinked = without_links(records)
    splits = split_records(unlinked, "0.6,0.2,0.2", 0, hash_threshold=DEFAULT_THRESHOLD)
    assert crossing_pairs(splits, pairs) == []
    truth = {i: u for u, unit in enumerate(group_records(records).units) for i in unit}
    found = group_records(unlinked, hash_threshold=DEFAULT_THRESHOLD)
    # Distinct look-alike scenes are seldom joined, and never many at once
    # (measured: 3 units join distinct scenes; the largest unit holds 3 images).
    assert sum(len({truth[i] for i in unit}) > 1 for unit in found.units) <= 6
    assert found.to_json()["largest_unit"] <= 4


def test_a_hash_group_swallowing_the_data_is_refused(world):
    records, _ = world
    refused = r"put 300 of 300 images \(100%\) in one group.*Lower --hash-threshold"
    with pytest.raises(CaptuneError, match=refused):
        split_records(records, "0.8,0.2", hash_threshold=200)
    # a real burst larger than the share is accepted when asked
    accepted = split_records(records, "0.8,0.2", hash_threshold=200, max_group_share=1.0)
    assert sum(map(len, accepted.values())) == 300


def test_split_json_reports_the_grouping(world, tmp_path):
    records, pairs = world
    write_records(tmp_path / "records.jsonl", records)
    split_file(tmp_path / "records.jsonl", tmp_path / "out", "0.6,0.2,0.2", 0, "event", hash_threshold=40)
    summary = json.loads((tmp_path / "out" / "split.json").read_text())
    grouping = summary["grouping"]
    assert grouping["by"][-2:] == ["meta.near_duplicate_of", "perceptual hash"]
    assert grouping["near_duplicates"]["threshold"] == 40 and grouping["near_duplicates"]["images"] == 300
    assert grouping["grouped_units"] >= len({b for _, b in pairs})
    assert sum(summary["units"].values()) == grouping["units"] < 300
    assert sum(summary["counts"].values()) == 300


@settings(max_examples=40, deadline=None)
@given(groups=st.lists(st.integers(0, 40), min_size=10, max_size=120), ratios=RATIOS,
       seed=st.integers(0, 1000), extra=st.integers(1, 10))
def test_groups_stay_whole_split_by_unit_counts_and_new_groups_move_few(groups, ratios, seed, extra):
    records = [CaptionRecord(f"i{k:03d}", f"/p/i{k:03d}.jpg", ["c"], {"group": g})
               for k, g in enumerate(groups)]
    splits = split_records(records, ratios, seed)
    where = membership(splits)
    assert all(len({where[r.image_id] for r in records if r.meta["group"] == g}) == 1 for g in set(groups))
    units = len(set(groups))
    assert [len({r.meta["group"] for r in s}) for s in splits.values()] == split_counts(units, ratios)
    more = records + [CaptionRecord(f"new{k}", f"/p/new{k}.jpg", ["c"], {"group": 100 + k})
                      for k in range(extra)]
    after = membership(split_records(more, ratios, seed))
    moved = {r.meta["group"] for r in records if where[r.image_id] != after[r.image_id]}
    assert len(moved) <= (len(ratios) - 1) * (extra + 1)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(5, 30), min_size=2, max_size=4), burst=st.integers(1, 4),
       seed=st.integers(0, 500))
def test_stratification_holds_over_units(sizes, burst, seed):
    records = []
    for s, size in enumerate(sizes):
        records += [CaptionRecord(f"s{s}-{k}-{b}", f"/p/s{s}-{k}-{b}.jpg", ["c"],
                                  {"event": f"ev{s}", "group": f"{s}-{k}"})
                    for k in range(size) for b in range(burst)]
    splits = split_records(records, (0.6, 0.2, 0.2), seed, stratify="event")
    for s, size in enumerate(sizes):
        for (name, recs), ratio in zip(splits.items(), (0.6, 0.2, 0.2)):
            got = len({r.meta["group"] for r in recs if r.meta["event"] == f"ev{s}"})
            assert abs(got - size * ratio) <= 2, (s, name, got, size * ratio)


def test_cli_groups_near_duplicates(world, tmp_path):
    from click.testing import CliRunner

    from captune.cli import cli

    records, _ = world
    write_records(tmp_path / "records.jsonl", without_links(records))
    args = ["data", "split", str(tmp_path / "records.jsonl"), "--ratios", "0.6,0.2,0.2",
            "--out", str(tmp_path / "s")]
    result = CliRunner().invoke(cli, args + ["--group-near-duplicates"])
    assert result.exit_code == 0, result.output
    assert "near-duplicate groups" in result.output
    summary = json.loads((tmp_path / "s" / "split.json").read_text())
    assert summary["grouping"]["near_duplicates"]["threshold"] == DEFAULT_THRESHOLD
    refused = CliRunner().invoke(cli, args + ["--hash-threshold", "200"])  # implies grouping
    assert refused.exit_code != 0 and "in one group" in refused.output
    accepted = CliRunner().invoke(cli, args + ["--hash-threshold", "200", "--max-group-share", "1"])
    assert accepted.exit_code == 0, accepted.output


def test_a_burst_of_up_to_ten_shots_is_never_refused(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    burst = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    records = []
    for k in range(30):
        pixels = burst if k < 11 else rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{k}.png")
        records.append(CaptionRecord(f"img{k:02d}", str(tmp_path / f"{k}.png"), ["c"]))
    # 10 shots of 20 images (50%) pass; 11 of 30 (37%) is over both the share and the floor
    assert group_records(records[1:21], hash_threshold=DEFAULT_THRESHOLD).to_json()["largest_unit"] == 10
    with pytest.raises(CaptuneError, match="put 11 of 30 images"):
        group_records(records, hash_threshold=DEFAULT_THRESHOLD)
