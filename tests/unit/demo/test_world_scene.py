import numpy as np

from captune.demo.scene import (
    ATTRIBUTE_VOCAB,
    BACKGROUNDS,
    COLOURS,
    LABELS,
    RADIUS,
    Scene,
    colour_distance,
    sample_scene,
)
from captune.demo.world import THEMES

SCENES = [sample_scene(np.random.default_rng(i), THEMES[i % len(THEMES)]) for i in range(400)]


def _nearest(rgb, table):
    return min(table, key=lambda name: colour_distance(rgb, table[name]))


def test_pattern_shades_read_as_their_own_colour():
    fills = {name: fill for name, (fill, _) in COLOURS.items()}
    for name, (fill, shade) in COLOURS.items():
        assert _nearest(shade, fills) == name
        assert colour_distance(fill, shade) > 40  # the pattern stays visible
        for bg in BACKGROUNDS.values():
            if colour_distance(fill, bg.rgb) >= 100:  # drawn on it: the pattern never erases the outline
                assert colour_distance(shade, bg.rgb) > 40


def test_backgrounds_are_far_from_the_colours_drawn_on_them():
    for scene in SCENES:
        for obj in scene.objects:
            assert colour_distance(COLOURS[obj.colour][0], BACKGROUNDS[scene.background].rgb) >= 100


def test_layout_keeps_objects_apart_inside_and_relations_true():
    for scene in SCENES:
        _check_layout(scene)


def _check_layout(scene):
    for o in scene.objects:
        assert 0 <= o.x - o.radius and o.x + o.radius <= 1
        assert 0 <= o.y - o.radius and o.y + o.radius <= 1
    for a in range(len(scene.objects)):
        for b in range(a + 1, len(scene.objects)):
            oa, ob = scene.objects[a], scene.objects[b]
            assert max(abs(oa.x - ob.x), abs(oa.y - ob.y)) > oa.radius + ob.radius
            assert (oa.colour, oa.shape) != (ob.colour, ob.shape)
    for i, rel, j in scene.relations:
        dx, dy = scene.objects[j].x - scene.objects[i].x, scene.objects[j].y - scene.objects[i].y
        axes = {"left of": (dx, dy), "right of": (-dx, dy), "above": (dy, dx), "below": (-dy, dx)}
        along, across = axes[rel]
        assert along > 0 and along >= 2 * abs(across)


def test_scenes_cover_the_vocabulary():
    seen = {key: set() for key in ATTRIBUTE_VOCAB}
    for scene in SCENES:
        for key, values in scene.attributes().items():
            seen[key].update(values)
    assert {k: sorted(v) for k, v in seen.items()} == {k: sorted(v) for k, v in ATTRIBUTE_VOCAB.items()}
    assert {len(s.objects) for s in SCENES} == {1, 2, 3}


def test_attributes_follow_object_order():
    scene = next(s for s in SCENES if len(s.objects) == 3)
    attrs = scene.attributes()
    assert attrs["colour"] == [o.colour for o in scene.objects]
    assert attrs["size"] == [o.size for o in scene.objects]
    assert attrs["relation"] == [scene.relations[0][1], scene.relations[1][1]]
    assert set(attrs) == set(ATTRIBUTE_VOCAB)


def test_labels_come_from_content():
    for scene in SCENES:
        labels = scene.labels()
        assert set(labels) <= set(LABELS)
        assert ("group photo" in labels) == (len(scene.objects) == 3)
        assert ("portrait" in labels) == (len(scene.objects) == 1)
        assert ("night" in labels) == BACKGROUNDS[scene.background].dark
        assert ("indoors" in labels) != ("outdoors" in labels)


def test_theme_biases_the_world():
    night = [s for s in SCENES if s.background in ("night", "dusk")]
    market = THEMES[1]
    assert market.name == "Night Market"
    scenes = [sample_scene(np.random.default_rng(i), market) for i in range(100)]
    assert all(s.background in market.backgrounds for s in scenes)
    favoured = sum(o.shape in market.shapes for s in scenes for o in s.objects)
    assert favoured / sum(len(s.objects) for s in scenes) > 0.6  # 3:1 weights on 3 of 6 shapes -> 0.75
    assert 0 < len(night) < len(SCENES)


def test_json_roundtrip_and_near_duplicate():
    scene = SCENES[5]
    assert Scene.from_json(scene.to_json()) == scene
    dup = scene.near_duplicate(np.random.default_rng(0))
    assert dup != scene
    assert dup.attributes() == scene.attributes() and dup.labels() == scene.labels()
    shifts = {(round(d.x - o.x, 4), round(d.y - o.y, 4)) for o, d in zip(scene.objects, dup.objects)}
    assert len(shifts) == 1  # the camera moved, the objects did not move apart
    assert 0.9 < dup.brightness < 1.1 and dup.brightness != 1.0


def test_sizes_are_distinct():
    assert RADIUS["large"] > 1.5 * RADIUS["small"]
