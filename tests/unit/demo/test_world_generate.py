import numpy as np
import pytest
from PIL import Image

from captune.data.records import read_records
from captune.demo.captions import OPENERS
from captune.demo.scene import Scene
from captune.demo.world import THEMES, generate
from captune.errors import ConfigError
from captune.io import read_json, read_jsonl


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _tree(generate(tmp_path / "a", n_images=30, seed=7, noisy=True).out_dir)
    b = _tree(generate(tmp_path / "b", n_images=30, seed=7, noisy=True).out_dir)
    c = _tree(generate(tmp_path / "c", n_images=30, seed=8, noisy=True).out_dir)
    assert len(a) == 30 + 4  # images + plain, house, house_rows, world.json
    assert a == b
    assert a.keys() == c.keys()
    assert a["plain.jsonl"] != c["plain.jsonl"]
    assert sum(a[k] != c[k] for k in a if k.endswith(".png")) > 25


def test_written_files_parse_and_agree(world):
    plain = read_records(world.files["plain"])
    house = read_records(world.files["house"])
    assert [r.image_id for r in plain] == [r.image_id for r in house] == sorted(world.scenes)
    assert all(len(r.captions) == 5 for r in plain + house)
    for p, h in zip(plain, house):
        assert p.image == h.image == f"images/{p.image_id}.png"
        assert (world.out_dir / p.image).is_file()
        assert p.meta == h.meta and p.event == h.event
        scene = Scene.from_json(p.meta["scene"])
        assert scene == world.scenes[p.image_id]
        assert p.attributes == scene.attributes() and p.labels == scene.labels()
        assert p.meta["description"] == scene.describe()
    rows = read_jsonl(world.files["house_rows"])
    assert len(rows) == sum(len(r.captions) for r in house)
    assert all(set(row) == {"image", "event", "labels", "caption"} for row in rows)
    assert [row["caption"] for row in rows] == [c for r in house for c in r.captions]
    info = read_json(world.files["world"])
    assert info["images"] == 240 and info["params"]["seed"] == 3


def test_images_are_the_rendered_scenes(world):
    from captune.demo.render import render

    for image_id in sorted(world.scenes)[:20]:
        on_disk = Image.open(world.out_dir / "images" / f"{image_id}.png")
        assert on_disk.mode == "RGB" and on_disk.size == (64, 64)
        assert on_disk.tobytes() == render(world.scenes[image_id], 64).tobytes()


def test_events_group_scenes_by_theme(world):
    assert len(world.events) == 6 and len({e.name for e in world.events}) == 6
    assert sum(len(e.image_ids) for e in world.events) == 240
    by_id = {r.image_id: r for r in world.plain}
    for event in world.events:
        assert len(event.image_ids) >= 20
        assert {by_id[i].event for i in event.image_ids} == {event.name}
        assert all(world.scenes[i].background in event.theme.backgrounds for i in event.image_ids)


def test_near_duplicates_are_marked_and_near(world):
    def pixels(image_id):
        return np.asarray(Image.open(world.out_dir / "images" / f"{image_id}.png"), dtype=float)

    def distance(a, b):  # mean absolute difference once b's exposure is fitted to a's
        pa, pb = pixels(a), pixels(b)
        return np.abs(pa - (pa * pb).sum() / (pb * pb).sum() * pb).mean()

    dups = [r for r in world.house if "near_duplicate_of" in r.meta]
    assert len(dups) >= 5
    event_of = {r.image_id: r.event for r in world.house}
    for r in dups:
        original = r.meta["near_duplicate_of"]
        assert original < r.image_id and event_of[original] == r.event
        assert "near_duplicate_of" not in world.house[sorted(event_of).index(original)].meta
        assert r.attributes == world.house[sorted(event_of).index(original)].attributes
        assert 0 < np.abs(pixels(r.image_id) - pixels(original)).mean() < 10  # exposure moved a little
        others = [i for i, e in event_of.items() if e == r.event and i not in (r.image_id, original)][:10]
        near = distance(r.image_id, original)
        assert near < 8 and near < min(distance(r.image_id, i) for i in others) / 2


def test_styles_differ_in_the_written_records(world):
    house = [c for r in world.house for c in r.captions]
    plain = [c for r in world.plain for c in r.captions]
    assert np.mean([c.startswith(tuple(OPENERS)) for c in house]) > 0.7
    assert not any(c.startswith(tuple(OPENERS)) for c in plain)
    assert all(r.event in c for r in world.house for c in r.captions)


def test_noisy_house_captions_keep_clean_copies(tmp_path):
    data = generate(tmp_path, n_images=40, seed=1, style="house", noisy=True)
    assert not (tmp_path / "plain.jsonl").exists() and data.plain == []
    caps = [c for r in data.house for c in r.captions]
    clean = [c for r in data.house for c in r.meta["clean_captions"]]
    assert 0.2 < np.mean([c != k for c, k in zip(caps, clean)]) < 0.8
    assert all(k in c for c, k in zip(caps, clean))
    assert any("#" in c for c in caps) and not any("#" in k or "@" in k for k in clean)


def test_plain_only_and_stale_images(tmp_path):
    generate(tmp_path, n_images=30, seed=0)
    data = generate(tmp_path, n_images=12, seed=0, style="plain", image_size=32)
    assert sorted(p.stem for p in (tmp_path / "images").iterdir()) == sorted(data.scenes)
    assert Image.open(tmp_path / "images" / "world_00000.png").size == (32, 32)
    assert data.house == [] and set(data.files) == {"images", "plain", "world"}


@pytest.mark.parametrize("kwargs, message", [
    ({"n_events": len(THEMES) + 1}, "n_events"),
    ({"n_images": 3, "n_events": 4}, "n_events"),
    ({"style": "fancy"}, "style"),
    ({"image_size": 8}, "image_size"),
])
def test_bad_arguments_are_user_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate(tmp_path / "out", **{"n_images": 10, **kwargs})
    assert not (tmp_path / "out").exists()
