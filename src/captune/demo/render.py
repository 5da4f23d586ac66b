"""Draw a shapes-world scene as an RGB image.

Shapes are drawn at four times the output size and box-downsampled, so edges are clean at
64 px. Materials are real patterns in a shade of the object's colour (diagonal stripes, a dot
grid, a checkerboard), scaled to the image so they look the same at every size. Light noise
and the brightness of a near-duplicate shot are applied after downsampling. The same scene
and size always give the same pixels.

    >>> render(scene, size=64).save("scene.png")
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from captune.demo.scene import BACKGROUNDS, COLOURS, Obj, Scene

SUPERSAMPLE = 4


def render(scene: Scene, size: int = 64) -> Image.Image:
    """Render ``scene`` as a ``size`` x ``size`` RGB image."""
    hi = size * SUPERSAMPLE
    canvas = _background(scene, hi)
    for obj in scene.objects:
        # draw inside the object's box only: masks the size of the canvas cost 10x more
        box = object_box(obj, hi)
        fill, shade = COLOURS[obj.colour]
        mask = _shape_mask(obj, hi, box)
        canvas.paste(fill, box, mask)
        if obj.material != "solid":
            canvas.paste(shade, box, ImageChops.multiply(mask, _pattern(obj.material, hi).crop(box)))
    low = np.asarray(canvas.reduce(SUPERSAMPLE), dtype=np.float32)  # (size, size, 3)
    return Image.fromarray(_finish(low, scene), "RGB")


def object_box(obj: Obj, size: int = 64) -> tuple[int, int, int, int]:
    """Pixel box ``(left, top, right, bottom)`` (right/bottom exclusive) that holds ``obj``."""
    r = obj.radius * size
    return (math.floor(obj.x * size - r), math.floor(obj.y * size - r),
            math.ceil(obj.x * size + r), math.ceil(obj.y * size + r))


def _background(scene: Scene, hi: int) -> Image.Image:
    rgb = BACKGROUNDS[scene.background].rgb
    if scene.background_style != "gradient":
        return Image.new("RGB", (hi, hi), rgb)
    # brighter at the top, darker at the bottom, like sky or stage light
    ramp = np.linspace(18.0, -18.0, hi, dtype=np.float32)[:, None, None]  # (hi, 1, 1)
    pixels = np.clip(np.rint(np.asarray(rgb, dtype=np.float32) + ramp), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.broadcast_to(pixels, (hi, hi, 3))), "RGB")


def _finish(low: np.ndarray, scene: Scene) -> np.ndarray:
    """Sensor noise for the "noise" style, then the shot's brightness."""
    if scene.background_style == "noise":
        size = low.shape[0]
        noise = np.random.default_rng(scene.noise_seed).normal(0.0, 5.0, (size, size, 1))  # grey noise
        low = low + noise.astype(np.float32)
    low = low * scene.brightness
    return np.clip(np.rint(low), 0, 255).astype(np.uint8)


def _shape_mask(obj: Obj, hi: int, box: tuple[int, int, int, int]) -> Image.Image:
    """Mask of ``obj`` on the canvas region ``box`` (255 inside the shape)."""
    mask = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy, r = obj.x * hi - box[0], obj.y * hi - box[1], obj.radius * hi
    if obj.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        draw.polygon(_polygon(obj.shape, cx, cy, r), fill=255)
    return mask


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Vertices of ``shape`` fitted to the box of half-side ``r`` around ``(cx, cy)``."""
    if shape == "square":
        h = 0.82 * r  # about the area of the circle of radius r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "triangle":
        # equilateral, pointing up, filling the box's width and centred in its height
        half_h = r * math.sqrt(3) / 2
        return [(cx, cy - half_h), (cx + r, cy + half_h), (cx - r, cy + half_h)]
    if shape == "hexagon":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.arange(6) * math.pi / 3]
    if shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else 0.5 * r
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return pts
    raise ValueError(f"unknown shape {shape!r}")


@lru_cache(maxsize=32)
def _pattern(material: str, hi: int) -> Image.Image:
    """Full-canvas mask of the pattern's shaded parts (255 = shade)."""
    yy, xx = np.mgrid[0:hi, 0:hi].astype(np.float32)
    period = hi / 12.0  # ~5 output pixels at every image size
    if material == "striped":
        on = ((xx + yy) % period) < period / 2
    elif material == "dotted":
        dx = (xx % period) - period / 2
        dy = (yy % period) - period / 2
        on = dx * dx + dy * dy < (0.3 * period) ** 2
    elif material == "checkered":
        cell = hi / 16.0  # 4 output pixels at 64 px
        on = ((xx // cell) + (yy // cell)) % 2 == 1
    else:
        raise ValueError(f"unknown material {material!r}")
    return Image.fromarray(on.astype(np.uint8) * 255, "L")
