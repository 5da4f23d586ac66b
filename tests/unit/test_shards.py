"""captune.shards: merging the part files of several captioning processes, and a resume by one
process of a run that several processes left behind."""

import json

import pytest

from captune.errors import CaptuneError
from captune.generate import PRESETS, caption_images
from captune.io import read_jsonl
from captune.shards import merge_parts, part_files, part_path, parts_dir, processes


def row(image_id: str, caption: str = "a caption") -> dict:
    return {"image_id": image_id, "caption": caption}


def write_lines(path, rows, cut: str = "") -> None:
    """``rows`` as JSON Lines, then ``cut`` (a line a kill cut short) without a newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + cut)


def test_parts_merge_in_the_input_order_each_image_once(tmp_path):
    out = tmp_path / "captions.jsonl"
    write_lines(out, [row("e", "kept as it was")], cut='{"image_id": "z", "capt')
    write_lines(part_path(out, 0), [row("c"), row("a"), row("e", "already in out")])
    write_lines(part_path(out, 1), [row("d"), row("other-input"), row("c", "second copy")], cut='{"image_')
    write_lines(part_path(out, 2), [row("b")])
    assert merge_parts(out, ["a", "b", "c", "d", "e"]) == 5
    rows = read_jsonl(out)
    assert [r["image_id"] for r in rows] == ["e", "a", "b", "c", "d", "other-input"]
    assert rows[0]["caption"] == "kept as it was" and rows[3]["caption"] == "a caption"
    assert not parts_dir(out).exists()


def test_merging_again_after_a_kill_before_the_parts_were_removed_adds_nothing(tmp_path):
    out = tmp_path / "captions.jsonl"
    write_lines(part_path(out, 0), [row("b"), row("a")])
    merge_parts(out, ["a", "b"])
    merged = out.read_text()
    write_lines(part_path(out, 0), [row("b"), row("a")])  # as if killed between the rename and the removal
    assert merge_parts(out, ["a", "b"]) == 0
    assert out.read_text() == merged and not parts_dir(out).exists()


def test_unicode_survives_the_merge_as_written(tmp_path):
    out = tmp_path / "captions.jsonl"
    write_lines(part_path(out, 0), [row("a", "café \u2028 ☕")])
    merge_parts(out, ["a"])
    assert out.read_text(encoding="utf-8") == json.dumps(row("a", "café \u2028 ☕"), ensure_ascii=False) + "\n"


def test_one_process_finishes_what_three_processes_left(tmp_path):
    """A run of three processes was killed: OUT holds the first images (an earlier run), the
    parts hold others, two of them end in a cut-off line. One process captions only the rest
    and writes what an uninterrupted run writes, byte for byte."""
    from captune.demo.world import generate

    data = generate(tmp_path / "world", n_images=12, seed=3, style="plain").files["plain"]
    whole = tmp_path / "whole.jsonl"
    caption_images(data, whole, model="shapes-blip2-opt", decoding=PRESETS["greedy"], batch_size=4)
    lines = whole.read_text().splitlines(keepends=True)
    out = tmp_path / "resumed.jsonl"
    out.write_text("".join(lines[:3]))
    for rank, picked in enumerate([[3, 6, 9], [4, 7], [5]]):
        part_path(out, rank).parent.mkdir(exist_ok=True)
        cut = lines[10][:25] if rank < 2 else ""
        part_path(out, rank).write_text("".join(lines[i] for i in picked) + cut)
    summary = caption_images(data, out, model="shapes-blip2-opt", decoding=PRESETS["greedy"], batch_size=4)
    assert (summary["skipped"], summary["captioned"]) == (9, 3)  # images 8, 10 and 11
    assert out.read_text() == whole.read_text()
    assert part_files(out) == [] and not parts_dir(out).exists()


def test_parts_written_with_another_decoding_are_refused(tmp_path):
    from captune.demo.world import generate

    data = generate(tmp_path / "world", n_images=2, seed=3, style="plain", n_events=1).files["plain"]
    out = tmp_path / "captions.jsonl"
    caption_images(data, out, model="shapes-blip2-opt", decoding=PRESETS["greedy"])
    part_path(out, 1).parent.mkdir()
    out.rename(part_path(out, 1))
    with pytest.raises(CaptuneError, match=r"rank1\.jsonl: line 1 does not match this run: decoding strategy"):
        caption_images(data, out, model="shapes-blip2-opt", decoding=PRESETS["beam"])


def test_a_launch_accelerate_did_not_join_is_refused(monkeypatch):
    from accelerate import PartialState

    assert PartialState(cpu=True).num_processes == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(CaptuneError, match="launched as 2 processes but accelerate joined 1"):
        processes()


def test_process_1_of_2_captions_every_second_image_into_its_part_without_a_progress_bar(tmp_path, monkeypatch):
    from captune import generate, shards
    from captune.demo.world import generate as generate_world
    from captune.generate import caption_to_files, items_from_input

    data = generate_world(tmp_path / "world", n_images=5, seed=3, style="plain", n_events=2).files["plain"]
    progress, real = [], generate.generate_captions

    def spy(*args, **kwargs):
        progress.append(kwargs["progress"])
        return real(*args, **kwargs)

    monkeypatch.setattr(generate, "generate_captions", spy)
    monkeypatch.setattr(shards, "processes", lambda: shards.Processes(rank=1, count=2, local_rank=1))
    out = tmp_path / "captions.jsonl"
    run = caption_to_files(items_from_input(data), {"out": out}, {"out": PRESETS["greedy"]}, model="shapes-blip2-opt",
                           progress=None)  # None: a bar on a terminal; only the main process may show one
    assert progress == [False] and not run["main_process"] and run["captioned"] == 5
    assert [r["image_id"] for r in read_jsonl(part_path(out, 1))] == ["world_00001", "world_00003"]
    assert not out.exists()  # the main process merges
