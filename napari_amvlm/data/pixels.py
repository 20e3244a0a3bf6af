"""Turn an image as stored into model input, and refuse images no model can segment (no Qt, no napari).
Reading files is :mod:`napari_amvlm.io`."""

from __future__ import annotations

import numpy as np
import skimage.transform

PERCENTILES = (1.0, 99.8)  # robust intensity range for non-8-bit images


def _to_hwc(img: np.ndarray) -> np.ndarray:
    """Return ``img`` as (H, W, 3): gray repeated, RGB kept, RGBA without alpha, channel-first moved last."""
    if img.ndim == 3 and img.shape[0] in (1, 3, 4) and min(img.shape[1:]) > 4:
        img = np.moveaxis(img, 0, -1)  # channel-first (C, H, W)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=-1)
    if img.ndim == 3 and img.shape[-1] == 1:
        return np.repeat(img, 3, axis=-1)
    if img.ndim == 3 and img.shape[-1] == 3:
        return img
    if img.ndim == 3 and img.shape[-1] == 4:
        return img[..., :3]
    raise ValueError(
        f"unsupported image shape {img.shape}: expected gray (H, W) or (H, W, 1), RGB (H, W, 3) "
        "or RGBA (H, W, 4)"
    )


def _scale_intensity(img: np.ndarray) -> np.ndarray:
    """Map intensities to float32 [0, 1]: uint8 / 255, anything else by a robust percentile range."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    x = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = np.percentile(x, PERCENTILES)
    if hi <= lo:  # fewer than ~0.2 % of pixels differ: fall back to the full range
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros_like(x)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


class ImageError(ValueError):
    """An image no model can give a meaningful answer for (the message says why)."""


def check_image(img: np.ndarray, min_size: int) -> None:
    """Refuse images that would get a confident but meaningless mask: smaller than ``min_size`` pixels a side (the
    model's patch size), any NaN or infinite pixel, or the same value everywhere. Raises :class:`ImageError`."""
    x = _to_hwc(np.asarray(img))
    h, w = x.shape[:2]
    if min(h, w) < min_size:
        raise ImageError(f"the image is {h}x{w} pixels; the model needs at least {min_size}x{min_size} (its patch "
                         "size)")
    if x.dtype.kind in "fc":
        bad = ~np.isfinite(x).all(axis=-1)
        if bad.any():
            raise ImageError(f"{int(bad.sum()):,} of {h * w:,} pixels are NaN or infinite; replace them (e.g. "
                             "numpy.nan_to_num) before segmenting")
    if (x == x[:1, :1]).all():
        value = x[0, 0, 0] if (x[0, 0] == x[0, 0, 0]).all() else tuple(x[0, 0].tolist())
        raise ImageError(f"the image is constant (every pixel is {value}): there is nothing to segment")


def is_gray(img: np.ndarray) -> bool:
    """Whether an image has no colour: one channel, or three equal ones (an X-ray saved as RGB)."""
    x = _to_hwc(np.asarray(img))
    return bool((x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all())


def to_gray(img: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the mean of the channels, scaled as :func:`to_model_input` scales them."""
    return _scale_intensity(_to_hwc(np.asarray(img))).mean(axis=-1)


def to_model_input(img: np.ndarray, size: int) -> np.ndarray:
    """Convert an image as stored into float32 (3, size, size) in [0, 1].

    Gray is repeated to three channels, RGBA drops alpha; uint8 is divided by 255, other dtypes are
    min-max scaled between the 1st and 99.8th percentiles (so dim 16-bit fluorescence stays visible);
    then resized bilinearly with anti-aliasing.
    """
    img = _to_hwc(np.asarray(img))
    x = _scale_intensity(img)
    if x.shape[:2] != (size, size):
        x = skimage.transform.resize(
            x, (size, size, 3), order=1, anti_aliasing=True, preserve_range=True
        ).astype(np.float32)
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)
