import numpy as np
import pytest

from captune.demo.render import object_box, render
from captune.demo.scene import BACKGROUNDS, COLOURS, colour_distance, sample_scene

SCENES = [sample_scene(np.random.default_rng(1000 + i)) for i in range(80)]


def _classify(pixels: np.ndarray, scene) -> np.ndarray:
    """Name of the nearest fill or pattern shade of the colours allowed on this background, or "bg"."""
    bg = BACKGROUNDS[scene.background].rgb
    names, refs = ["bg"], [bg]
    for name, (fill, shade) in COLOURS.items():
        if colour_distance(fill, bg) >= 100:
            names += [name, name + "/shade"]
            refs += [fill, shade]
    dist = np.linalg.norm(pixels[..., None, :].astype(float) - np.array(refs, dtype=float), axis=-1)
    return np.array(names)[dist.argmin(-1)]


def _object_pixels(scene, obj, size=64):
    left, top, right, bottom = object_box(obj, size)
    crop = np.asarray(render(scene, size))[top:bottom, left:right]
    return _classify(crop, scene)


def test_render_is_deterministic_rgb_and_sized():
    a, b = render(SCENES[0], 64), render(SCENES[0], 64)
    assert a.mode == "RGB" and a.size == (64, 64)
    assert a.tobytes() == b.tobytes()
    assert render(SCENES[0], 96).size == (96, 96)
    assert render(SCENES[1]).tobytes() != a.tobytes()


@pytest.mark.parametrize("size", [64, 128])
def test_dominant_colour_in_each_box_is_the_objects(size):
    for scene in SCENES:
        for obj in scene.objects:
            labels = _object_pixels(scene, obj, size)
            colours = [lab.split("/")[0] for lab in labels.ravel() if lab != "bg"]
            assert max(set(colours), key=colours.count) == obj.colour, (scene.describe(), obj)


def test_sizes_differ_in_drawn_area():
    areas = {"small": [], "large": []}
    for scene in SCENES:
        for obj in scene.objects:
            labels = _object_pixels(scene, obj)
            areas[obj.size].append(np.mean([lab.startswith(obj.colour) for lab in labels.ravel()]) *
                                   labels.size)
    assert np.mean(areas["large"]) > 2 * np.mean(areas["small"])
    assert min(areas["small"]) > 20  # small objects are still many pixels (about 12 px across)


def test_relations_hold_for_drawn_centres():
    checked = 0
    for scene in SCENES:
        pixels = np.asarray(render(scene))
        labels = _classify(pixels, scene)
        centres = []
        for obj in scene.objects:
            left, top, right, bottom = object_box(obj, 64)
            ys, xs = np.nonzero(np.char.startswith(labels[top:bottom, left:right], obj.colour))
            centres.append((left + xs.mean(), top + ys.mean()))
        for i, rel, j in scene.relations:
            dx, dy = centres[j][0] - centres[i][0], centres[j][1] - centres[i][1]
            along = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[rel]
            assert along > 3, (scene.describe(), rel)
            checked += 1
    assert checked > 40


def test_materials_are_drawn_as_patterns():
    shade_share = {"solid": [], "striped": [], "dotted": [], "checkered": []}
    for scene in SCENES:
        for obj in scene.objects:
            labels = _object_pixels(scene, obj)
            mine = np.char.startswith(labels, obj.colour)
            # inside only: anti-aliased edge pixels mix fill and background and look like a shade
            inner = mine[1:-1, 1:-1] & mine[:-2, 1:-1] & mine[2:, 1:-1] & mine[1:-1, :-2] & mine[1:-1, 2:]
            shade = np.char.endswith(labels[1:-1, 1:-1], "/shade")
            shade_share[obj.material].append(shade[inner].mean())
    assert max(shade_share["solid"]) < 0.02
    for material in ("striped", "dotted", "checkered"):
        assert min(shade_share[material]) > 0.1, material
    assert np.mean(shade_share["dotted"]) < np.mean(shade_share["striped"])  # dots cover less than stripes
