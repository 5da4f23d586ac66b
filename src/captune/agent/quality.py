"""Photo quality: sharpness and exposure, measured at ingest and flagged here.

Sharpness is the variance of the Laplacian (the 3 x 3 kernel [0 1 0; 1 -4 1; 0 1 0]) of a grey
copy whose longer side is resized to ``quality.size`` pixels, so a 24-megapixel photo and its
phone-sized copy score alike (within 7% on scikit-image's sample photos and their 2x copies).
The score also depends on content: a sharp photo of the moon or a plain backdrop scores low. So
a photo is flagged ``blurred`` only when two things agree: its sharpness is far below that of
the photos shot around it (under ``min_relative_sharpness`` of the median within
``window_minutes``), and its own edges look soft by the blur effect of Crete et al. 2007 ("The
blur effect", SPIE 6492; as ``skimage.measure.blur_effect``: how little the edges change when
the image is blurred again; 0 sharp, 1 blurred) at ``min_blur_effect`` or more. On the sample
photos the blur effect is 0.15-0.42 for sharp photos (the moon 0.34, though its Laplacian is a
sixteenth of the coins') and 0.69 for the motion-blurred clock. An absolute floor on the
Laplacian (``min_sharpness``) is available but off by default.

Exposure: the mean luminance, and the fractions of pixels clipped dark (luminance <= 8) and
bright (>= 247); a photo with more than ``max_clipped_fraction`` clipped on one side is flagged
``underexposed`` or ``overexposed``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import replace

import numpy as np
from PIL import Image

from captune.agent.config import QualitySection
from captune.agent.records import Photo

DARK_LEVEL = 8
BRIGHT_LEVEL = 247


def sharpness(grey: Image.Image, size: int = 256) -> float:
    """Variance of the Laplacian of ``grey`` resized so its longer side is ``size`` pixels."""
    w, h = grey.size
    scale = size / max(w, h)
    small = grey.resize((max(3, round(w * scale)), max(3, round(h * scale))), Image.Resampling.BILINEAR)
    a = np.asarray(small, dtype=np.float32)
    lap = a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] - 4 * a[1:-1, 1:-1]
    return round(float(lap.var()), 3)


def blur_effect(grey: Image.Image, size: int = 256, h_size: int = 11) -> float:
    """Crete et al.'s blur effect (0 sharp .. 1 blurred) of ``grey`` resized to ``size`` on its longer side;
    the max over the two axes, as ``skimage.measure.blur_effect``."""
    from scipy import ndimage

    w, h = grey.size
    scale = size / max(w, h)
    a = np.asarray(grey.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.Resampling.BILINEAR),
                   dtype=np.float64) / 255.0
    inner = tuple(slice(2, s - 1) for s in a.shape)
    values = []
    for axis in (0, 1):
        sharp = np.maximum(1e-10, np.abs(ndimage.sobel(a, axis=axis)))
        soft = np.maximum(1e-10, np.abs(ndimage.sobel(ndimage.uniform_filter1d(a, h_size, axis=axis), axis=axis)))
        m1, m2 = sharp[inner].sum(), np.maximum(0, sharp - soft)[inner].sum()
        values.append(abs(m1 - m2) / m1)
    return round(float(max(values)), 4)


def exposure_stats(grey: Image.Image) -> tuple[float, float, float]:
    """``(mean luminance 0-1, fraction clipped dark, fraction clipped bright)``."""
    hist = np.asarray(grey.histogram()[:256], dtype=np.float64)
    total = hist.sum() or 1.0
    mean = float((hist * np.arange(256)).sum() / total / 255)
    return (round(mean, 4), round(float(hist[:DARK_LEVEL + 1].sum() / total), 4),
            round(float(hist[BRIGHT_LEVEL:].sum() / total), 4))


def quality_problems(photo: Photo, neighbourhood_median: float | None, cfg: QualitySection) -> list[str]:
    """The checks ``photo`` fails: ``blurred``, ``underexposed``, ``overexposed``."""
    problems = []
    s = photo.sharpness or 0.0
    soft = (photo.blur if photo.blur is not None else 1.0) >= cfg.min_blur_effect
    relative = bool(neighbourhood_median) and s < cfg.min_relative_sharpness * neighbourhood_median
    if s < cfg.min_sharpness or (relative and soft):
        problems.append("blurred")
    if (photo.shadows or 0.0) > cfg.max_clipped_fraction:
        problems.append("underexposed")
    if (photo.highlights or 0.0) > cfg.max_clipped_fraction:
        problems.append("overexposed")
    return problems


def neighbourhood_medians(photos: list[Photo], window_minutes: float) -> list[float | None]:
    """For each photo, the median sharpness of the measured photos shot within ``window_minutes``
    of it (itself included); undated photos are compared with all the measured photos."""
    measured = [p for p in photos if p.sharpness is not None]
    everyone = float(np.median([p.sharpness for p in measured])) if measured else None
    dated = sorted((p.timestamp, p.sharpness) for p in measured if p.timestamp is not None)
    times = [t for t, _ in dated]
    values = np.array([s for _, s in dated], dtype=np.float64)
    window = window_minutes * 60
    out: list[float | None] = []
    for p in photos:
        if p.sharpness is None:
            out.append(None)
        elif p.timestamp is None or not times:
            out.append(everyone)
        else:
            lo, hi = bisect_left(times, p.timestamp - window), bisect_right(times, p.timestamp + window)
            out.append(float(np.median(values[lo:hi])))
    return out


def flag_quality(photos: list[Photo], cfg: QualitySection) -> list[Photo]:
    """Mark usable photos that fail a check ``low_quality`` (reason: the checks, comma-separated)."""
    if not cfg.enabled:
        return list(photos)
    medians = neighbourhood_medians([p for p in photos if p.usable], cfg.window_minutes)
    by_id = dict(zip([p.id for p in photos if p.usable], medians, strict=True))
    out = []
    for p in photos:
        problems = quality_problems(p, by_id[p.id], cfg) if p.usable else []
        out.append(replace(p, status="low_quality", reason=", ".join(problems)) if problems else p)
    return out
