"""What one image file may decode into, checked from its header before any pixel is decoded: a file may come
from anyone. Pillow refuses more than twice its MAX_IMAGE_PIXELS (89,478,485) for PNG, JPEG, ...; the same limit
applies here to TIFF (which tifffile would decode at any size) and to the arrays of an annotation project."""

from __future__ import annotations

import logging
import math
import os

from .errors import UnreadableImageError

MAX_IMAGE_PIXELS = 178_956_970  # pixels of one 2D plane
MAX_IMAGE_BYTES = 2 << 30  # bytes of the whole decoded file (every plane of a stack)
MAX_TIFF_PAGES = 4096  # pages of a TIFF file (telling its series apart takes up to ~1.5 ms a page)
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def check_declared_size(path: str | os.PathLike) -> None:
    """Refuse, from its header alone, an image file that would decode into more than :data:`MAX_IMAGE_PIXELS`
    pixels per plane or :data:`MAX_IMAGE_BYTES` in all, a TIFF with several image series (only the first would
    be read), or content no image reader of this project knows. Call it inside :func:`.errors.reading`."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic in _TIFF_MAGIC:
        _check_tiff(path)
    else:
        _check_pillow(path)


def _refuse_size(path: str | os.PathLike, plane: tuple[int, int], total_bytes: int) -> None:
    h, w = plane
    if h * w > MAX_IMAGE_PIXELS:
        raise UnreadableImageError(path, f"it declares {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS:,} pixels of "
                                         "one image that napari-amvlm opens")
    if total_bytes > MAX_IMAGE_BYTES:
        raise UnreadableImageError(path, f"it declares {total_bytes / 2**30:.1f} GiB of pixels, more than the "
                                         f"{MAX_IMAGE_BYTES / 2**30:.0f} GiB of one image file that napari-amvlm "
                                         "opens")


def _check_tiff(path: str | os.PathLike) -> None:
    import tifffile

    log = logging.getLogger("tifffile")
    quiet, log.disabled = log.disabled, True  # its warnings about a malformed header are not the user's error
    try:
        with tifffile.TiffFile(path) as tif:
            pages = len(tif.pages)
            if pages > MAX_TIFF_PAGES:
                raise UnreadableImageError(path, f"it has {pages:,} pages, more than the {MAX_TIFF_PAGES:,} of a "
                                                 "TIFF file that napari-amvlm opens")
            series = tif.series
            if len(series) != 1:
                raise UnreadableImageError(path, f"it holds {len(series)} image series; napari-amvlm opens TIFF "
                                                 "files of one series: save each series as its own file")
            shape, axes, itemsize = tuple(series[0].shape), series[0].axes, series[0].dtype.itemsize
    finally:
        log.disabled = quiet
    plane = (shape[axes.index("Y")], shape[axes.index("X")]) if "Y" in axes and "X" in axes else shape[-2:]
    _refuse_size(path, plane if len(plane) == 2 else (1, math.prod(plane)), math.prod(shape) * itemsize)


def _check_pillow(path: str | os.PathLike) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # reads the header only
            w, h = im.size
            depth = 2 if "16" in im.mode else 4 if im.mode in ("I", "F") else 1
            frames = int(getattr(im, "n_frames", 1))
            bands = max(len(im.getbands()), 4 if im.mode == "P" else 1)  # palettes may become RGBA
    except UnidentifiedImageError as err:
        raise UnreadableImageError(path, "not an image file (no image reader recognises its content)") from err
    except Image.DecompressionBombError as err:  # Pillow's own limit, where it is lower than ours
        raise UnreadableImageError(path, f"it declares more pixels than napari-amvlm opens ({err})") from err
    _refuse_size(path, (h, w), h * w * bands * depth * frames)
