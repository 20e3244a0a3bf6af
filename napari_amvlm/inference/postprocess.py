"""Anatomical clean-up of a predicted mask (chest X-rays): nothing outside the body, no small specks.

:func:`clean_mask` is the one post-processing step of napari-amvlm; ``amvlm segment``, ``amvlm evaluate`` and the
napari widget all call it (each can turn it off). Two steps, in this order:

1. **Outside the body** (grayscale images only): the body is what remains of the image after removing the dark
   background connected to the image border: pixels darker than half the Otsu threshold of the smoothed image
   (the air around a patient on an X-ray, darker than the lungs). Foreground there is removed. Colour images
   (histology) skip this step.
2. **Specks**: connected foreground regions (8-connected) smaller than ``min_area`` of the image are removed.

The defaults suit chest X-rays, where an infected region covers a few tenths of a percent of the image or more. On
images whose targets are many tiny objects (cell nuclei in histology), turn the clean-up off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import gaussian, threshold_otsu
from skimage.transform import resize

from ..io.image import Image, as_image

WORK_SIZE = 256  # the body is found on the image shrunk to at most this many pixels a side
DARK_FRACTION = 0.5  # background: darker than this fraction of the Otsu threshold


@dataclass(frozen=True)
class Cleanup:
    """Settings of :func:`clean_mask`."""

    body: bool = True  # remove foreground outside the body (grayscale images only)
    # remove connected regions smaller than this fraction of the image's area. 0.2 % (100 px at 224 x 224) was the
    # best of 0.05-1 % on 600 held-out QaTa training images of new patients (docs/RESULTS.md); at 1 % the clean-up
    # erased real lesions of 0.4-0.9 % of the image.
    min_area: float = 0.002

    def describe(self) -> str:
        parts = (["outside the body"] if self.body else []) + [f"regions under {100 * self.min_area:g}% of the image"]
        return "removed " + " and ".join(parts)


def body_mask(image: Image | np.ndarray) -> np.ndarray:
    """(H, W) bool: True on the body, False on the dark background connected to the image's border."""
    unit = (image if isinstance(image, Image) else as_image(image)).unit
    gray = unit if unit.ndim == 2 else unit.mean(axis=-1)
    shape = gray.shape
    scale = WORK_SIZE / max(shape)
    if scale < 1:
        gray = resize(gray, (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))), anti_aliasing=True)
    gray = gaussian(gray, sigma=max(gray.shape) / 112)
    if gray.max() - gray.min() < 1e-6:
        return np.ones(shape, bool)
    dark = gray < DARK_FRACTION * threshold_otsu(gray)
    labels, _ = ndi.label(dark)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    body = ~np.isin(labels, edge[edge > 0])
    if body.shape != shape:
        body = resize(body.astype(np.uint8), shape, order=0, anti_aliasing=False, preserve_range=True) > 0
    return body


def remove_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """``mask`` without its connected regions (8-connected) smaller than ``min_area`` of the image's area."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_area * mask.size
    keep[0] = False
    return keep[labels]


def clean_mask(mask: np.ndarray, image: Image | np.ndarray, cleanup: Cleanup | None = None) -> np.ndarray:
    """The mask (H, W) bool of ``image`` (a typed image, or pixels (H, W[, C])) after the clean-up steps of the
    module docstring."""
    cleanup = cleanup or Cleanup()
    mask = np.asarray(mask, bool)
    image = image if isinstance(image, Image) else as_image(image)
    if cleanup.body and image.gray:
        mask = mask & body_mask(image)
    return remove_specks(mask, cleanup.min_area) if cleanup.min_area > 0 else mask
