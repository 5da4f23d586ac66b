"""`captune caption` goes past images it cannot read: each is listed once in OUT.rejects.jsonl,
the other images get the captions a run without them gives, and a rerun tries the rejected ones
again. `captune evaluate`, which scores every image, stops and names the image."""

import json
import shutil
import threading

import pytest
from click.testing import CliRunner

from captune.cli import cli
from captune.errors import CaptuneError
from captune.generate import PRESETS, caption_images, generate_captions, items_from_input
from captune.io import read_jsonl

MODEL = "shapes-blip2-opt"  # its captions tell shapes-world images apart
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(50)
BAD = {"._world_00002.png": "not_an_image", "world_00001b.png": "truncated_image",
       "world_00003z.png": "empty_file"}  # the names interleave with the good images' in sorted order


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Six shapes-world images."""
    from captune.demo.world import generate

    return generate(tmp_path_factory.mktemp("world"), n_images=6, seed=7, style="plain").files["images"]


@pytest.fixture(scope="module")
def without_bad(good, tmp_path_factory):
    """The captions of the good images alone, by image id."""
    out = tmp_path_factory.mktemp("alone") / "captions.jsonl"
    caption_images(good, out, model=MODEL, decoding=PRESETS["greedy"], batch_size=2)
    captions = {r["image_id"]: r["caption"] for r in read_jsonl(out)}
    assert len(set(captions.values())) == 6  # distinct: a caption given to another image would show
    return captions


def with_bad_files(good, folder):
    """``good``'s images in ``folder`` with a truncated image, an empty file and an AppleDouble file."""
    shutil.copytree(good, folder)
    whole = (folder / "world_00001.png").read_bytes()
    (folder / "world_00001b.png").write_bytes(whole[: len(whole) // 2])
    (folder / "world_00003z.png").write_bytes(b"")
    (folder / "._world_00002.png").write_bytes(APPLEDOUBLE)
    return folder


def test_unreadable_images_are_listed_and_the_others_captioned_as_without_them(good, without_bad, tmp_path):
    folder = with_bad_files(good, tmp_path / "photos")
    out = tmp_path / "captions.jsonl"
    summary = caption_images(folder, out, model=MODEL, decoding=PRESETS["greedy"], batch_size=2)
    from captune.io import rejects_path
    assert (summary["captioned"], summary["unreadable"]) == (6, 3)
    assert summary["rejects"] == str(tmp_path / "captions.rejects.jsonl") == str(rejects_path(out))
    assert {r["image_id"]: r["caption"] for r in read_jsonl(out)} == without_bad
    rejects = read_jsonl(rejects_path(out))
    assert [r["image_id"] for r in rejects] == sorted(BAD)  # input order, each once
    for r in rejects:
        assert r["reason"] == BAD[r["image_id"]] and r["image"] == str(folder / r["image_id"])
        assert r["detail"].startswith(r["image"] + ": ")

    shutil.copy(folder / "world_00003.png", folder / "world_00003z.png")  # one bad file fixed
    again = caption_images(folder, out, model=MODEL, decoding=PRESETS["greedy"], batch_size=2)
    assert (again["skipped"], again["captioned"], again["unreadable"]) == (6, 1, 2)
    captions = {r["image_id"]: r["caption"] for r in read_jsonl(out)}
    assert captions["world_00003z.png"] == without_bad["world_00003.png"]  # the same picture
    assert [r["image_id"] for r in read_jsonl(rejects_path(out))] == ["._world_00002.png", "world_00001b.png"]

    for name in BAD:
        (folder / name).unlink()
    last = caption_images(folder, out, model=MODEL, decoding=PRESETS["greedy"], batch_size=2)
    assert last["unreadable"] == 0 and last["rejects"] is None and not rejects_path(out).exists()


def test_prefetch_threads_report_each_failure_for_its_own_image(good, tmp_path):
    """An image that fails in a worker thread is reported with its item; the batch's other
    captions stay with their images (an unreadable image gets no candidates)."""
    from captune.models.family import adapt
    from captune.models.loading import load_captioner

    items = items_from_input(with_bad_files(good, tmp_path / "photos"))
    captioner, batcher = adapt(*load_captioner(MODEL))
    greedy = [PRESETS["greedy"]]
    reported, threads = [], set()

    def on_unreadable(item, error):
        threads.add(threading.current_thread().name)
        reported.append((item.image_id, error.reason))

    inline = generate_captions(captioner.eval(), batcher, items, greedy, batch_size=3, on_unreadable=on_unreadable)
    ahead = generate_captions(captioner, batcher, items, greedy, batch_size=3, workers=2, on_unreadable=on_unreadable)
    assert ahead == inline and threads == {threading.current_thread().name}  # reported to the caller's thread
    assert reported == 2 * sorted(BAD.items())
    assert [it.image_id for it, caps in zip(items, inline[0]) if not caps] == sorted(BAD)
    alone = generate_captions(captioner, batcher, [it for it in items if it.image_id not in BAD], greedy)
    assert [caps for caps in inline[0] if caps] == alone[0]
    with pytest.raises(CaptuneError, match=r"/\._world_00002.png: not an image file"):  # no callback: stop
        generate_captions(captioner, batcher, items, greedy, batch_size=3, workers=2)


def test_cli_warns_and_exits_0_unless_strict_or_nothing_could_be_read(good, tmp_path):
    folder = with_bad_files(good, tmp_path / "photos")
    out = tmp_path / "c.jsonl"
    args = ["caption", "--model", MODEL, "--input", str(folder), "--out", str(out), "--decoding", "greedy"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert f"warning: 3 images could not be read; listed in {tmp_path / 'c.rejects.jsonl'}" in res.stderr
    res = CliRunner().invoke(cli, [*args, "--strict", "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["unreadable"] == 3
    bad_only = tmp_path / "bad"
    bad_only.mkdir()
    (bad_only / "a.jpg").write_bytes(b"not a picture")
    res = CliRunner().invoke(cli, ["caption", "--model", MODEL, "--input", str(bad_only), "--out",
                                    str(tmp_path / "b.jsonl")])
    assert res.exit_code == 1 and "warning: 1 image could not be read" in res.stderr
    assert read_jsonl(tmp_path / "b.rejects.jsonl")[0]["reason"] == "not_an_image"


def test_evaluate_stops_at_an_unreadable_image_and_names_it(tmp_path):
    from captune.demo.world import generate
    from captune.evaluate import evaluate

    world = generate(tmp_path / "world", n_images=3, seed=7, style="plain", n_events=2)
    broken = world.out_dir / "images" / "world_00001.png"
    broken.write_bytes(b"")
    with pytest.raises(CaptuneError) as e:
        evaluate(world.files["plain"], tmp_path / "eval", model=MODEL, decoding="greedy", metrics=["bleu_4"])
    assert str(broken) in str(e.value) and "world_00001" in str(e.value)
    assert "evaluate scores every image" in str(e.value)
    assert not (tmp_path / "eval" / "eval.json").exists()
