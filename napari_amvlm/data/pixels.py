"""Model input from a typed image (no Qt, no napari). Reading files is :mod:`napari_amvlm.io`; the image's
intensities are scaled once, in :attr:`napari_amvlm.io.image.Image.unit`."""

from __future__ import annotations

import numpy as np
import skimage.transform

from ..io.image import Image, as_image


def to_model_input(img: Image | np.ndarray, size: int) -> np.ndarray:
    """float32 (3, size, size) in [0, 1] from a typed image (or pixels as displayed, wrapped on entry).

    Gray is repeated to three channels, RGBA drops alpha; uint8 is divided by 255, other dtypes are
    min-max scaled between the 1st and 99.8th percentiles (so dim 16-bit fluorescence stays visible);
    then resized bilinearly with anti-aliasing.
    """
    x = (img if isinstance(img, Image) else as_image(img)).unit
    if x.shape[:2] != (size, size):
        x = skimage.transform.resize(x, (size, size, *x.shape[2:]), order=1, anti_aliasing=True,
                                     preserve_range=True).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    x = np.repeat(x[None], 3, axis=0) if x.ndim == 2 else x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32)
