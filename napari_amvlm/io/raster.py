"""Everyday image files: PNG, TIFF, JPEG, BMP, GIF, WebP (scikit-image, tifffile, imageio). Reads images and masks
as stored and writes mask files; no Qt, no napari."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import skimage.io
import skimage.transform

from .errors import reading
from .limits import check_declared_size

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as stored (PNG, TIFF, JPEG and the other formats Pillow knows). Raises FileNotFoundError,
    or :class:`~napari_amvlm.io.errors.UnreadableImageError` naming the file and the reason (a file that declares
    more pixels than one image may have is refused before decoding: :mod:`.limits`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    with reading(path):
        check_declared_size(path)
        return np.asarray(skimage.io.imread(str(path)))


def read_pixels(path: Path) -> np.ndarray:
    """Pixels of an image file: TIFF through tifffile (pages stay the first axis), the rest through
    scikit-image. Raises :class:`~napari_amvlm.io.errors.UnreadableImageError` (a ValueError) for unreadable
    files and for files that declare more pixels than one image may have (checked before decoding)."""
    with reading(path):
        check_declared_size(path)
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        return np.asarray(skimage.io.imread(str(path)))


def mask_to_bool(mask: np.ndarray, size: int | None = None) -> np.ndarray:
    """Any non-zero pixel is foreground (binary or instance labels); optional nearest resize to size²."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        mask = mask[..., :3].any(axis=-1)  # colour-saved mask; alpha ignored
    elif mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"unsupported mask shape {mask.shape}: expected (H, W)")
    fg = mask != 0
    if size is not None and fg.shape != (size, size):
        fg = (
            skimage.transform.resize(
                fg.astype(np.uint8), (size, size), order=0, anti_aliasing=False, preserve_range=True
            )
            > 0
        )
    return fg


def read_mask(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read a mask as bool (size, size) (nearest-neighbour resize; None keeps the stored size)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    with reading(path):
        check_declared_size(path)
        mask = skimage.io.imread(str(path))
    return mask_to_bool(mask, size)


def write_mask_file(path: Path, mask: np.ndarray) -> None:
    """Write a 2D label mask as PNG (up to 16 bit) or TIFF (up to 32 bit), atomically."""
    suffix = path.suffix.lower()
    tmp = path.with_name(path.name + ".part" + suffix)
    if suffix == ".png":
        if mask.dtype.itemsize > 2:
            raise ValueError(f"{path.name}: labels above 65535 do not fit in a PNG; export as TIFF")
        import imageio.v3 as iio

        iio.imwrite(tmp, mask, extension=".png")
    elif suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(tmp, mask)
    else:
        raise ValueError(f"unsupported mask format {suffix!r} (use png or tif)")
    os.replace(tmp, path)
