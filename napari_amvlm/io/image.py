"""The typed image: what every reader returns and what the model input, the clean-up, tiling and the writers take.

An image is read once, on entry, into an :class:`Image`: its pixels as displayed (gray (H, W) or RGB (H, W, 3),
in the type they came in), the size of a pixel, which patient direction its rows and columns run, and where it came
from. Its intensities are scaled to [0, 1] once (:attr:`Image.unit`), for the whole image: a window of a large
image is scaled as the whole image is. A file with several planes (a DICOM series, a NIfTI volume) is a
:class:`Scan`, whose :meth:`Scan.plane` is an :class:`Image`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PERCENTILES = (1.0, 99.8)  # robust intensity range for images that are not 8-bit
DIRECTIONS = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}  # patient directions and opposites
DIRECTION_NAMES = {"L": "left", "R": "right", "A": "anterior", "P": "posterior", "H": "head", "F": "feet"}


class ImageError(ValueError):
    """An image no model can give a meaningful answer for (the message says why)."""


@dataclass(frozen=True)
class Orientation:
    """Which way the patient lies in an image, as DICOM's Patient Orientation says it: ``rows`` is the patient
    direction of increasing column (along a row, to the image's right), ``columns`` that of increasing row (down
    a column). Each is one letter of L, R, A, P, H, F: the dominant direction. ``source`` names the tag it was
    read from, for people."""

    rows: str
    columns: str
    source: str

    def __post_init__(self) -> None:
        for d in (self.rows, self.columns):
            if d not in DIRECTIONS:
                raise ValueError(f"a patient direction is one of {', '.join(DIRECTIONS)}, not {d!r}")
        if DIRECTIONS[self.rows] == self.columns or self.rows == self.columns:
            raise ValueError(f"rows toward {self.rows} and columns toward {self.columns} are not perpendicular")

    def describe(self) -> str:
        return f"{self.source} {self.rows}\\{self.columns}"

    def to_dict(self) -> dict[str, str]:
        return {"rows": self.rows, "columns": self.columns, "source": self.source}

    @classmethod
    def from_dict(cls, data: Any) -> Orientation | None:
        """The orientation stored by :meth:`to_dict` (e.g. in a layer's metadata), or None when absent or not
        one (the metadata of a layer may come from anywhere)."""
        try:
            return cls(str(data["rows"]), str(data["columns"]), str(data.get("source", "orientation"))[:80])
        except (TypeError, KeyError, ValueError, AttributeError):
            return None


def _channels_last(img: np.ndarray) -> np.ndarray:
    """(H, W) gray, or (H, W, 3) colour: one channel dropped to gray, RGBA without alpha, channel-first moved last,
    three equal channels (an X-ray saved as RGB) made gray."""
    if img.ndim == 3 and img.shape[0] in (1, 3, 4) and min(img.shape[1:]) > 4:
        img = np.moveaxis(img, 0, -1)  # channel-first (C, H, W)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3]
        if (img[..., 0] == img[..., 1]).all() and (img[..., 0] == img[..., 2]).all():
            img = img[..., 0]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3):
        return img
    raise ImageError(f"unsupported image shape {img.shape}: expected gray (H, W) or (H, W, 1), RGB (H, W, 3) "
                     "or RGBA (H, W, 4)")


def scale_intensity(img: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: uint8 / 255, anything else by a robust percentile range (so dim 16-bit fluorescence
    stays visible)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    x = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = np.percentile(x, PERCENTILES)
    if hi <= lo:  # fewer than ~0.2 % of pixels differ: fall back to the full range
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros_like(x)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


@dataclass(eq=False)
class Image:
    """One 2D image as displayed (see the module docstring). Build it with :func:`as_image`."""

    pixels: np.ndarray  # (H, W) gray or (H, W, 3) RGB, in the type the source gave
    spacing: tuple[float, float] | None = None  # (row, column) size of a pixel in mm, when the file says
    orientation: Orientation | None = None  # the patient directions of its rows and columns, when the file says
    source: str = ""  # where it came from: a file, a layer, a project image

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.pixels.shape[:2])

    @property
    def gray(self) -> bool:
        return self.pixels.ndim == 2

    @functools.cached_property
    def unit(self) -> np.ndarray:
        """The pixels as float32 in [0, 1], (H, W) or (H, W, 3), scaled once for the whole image."""
        return scale_intensity(self.pixels)

    @functools.cached_property
    def key(self) -> str:
        """Content hash of the pixels (the embedding cache's key)."""
        import hashlib

        a = np.ascontiguousarray(self.pixels)
        h = hashlib.sha1(memoryview(a).cast("B"))
        h.update(str((a.shape, a.dtype.str)).encode())
        return h.hexdigest()

    def check(self, min_size: int) -> None:
        """Refuse an image that would get a confident but meaningless mask: smaller than ``min_size`` pixels a
        side (the model's patch size), any NaN or infinite pixel, or the same value everywhere (ImageError)."""
        h, w = self.shape
        if min(h, w) < min_size:
            raise ImageError(f"the image is {h}x{w} pixels; the model needs at least {min_size}x{min_size} "
                             "(its patch size)")
        x = self.pixels
        if x.dtype.kind in "fc":
            bad = ~np.isfinite(x) if x.ndim == 2 else ~np.isfinite(x).all(axis=-1)
            if bad.any():
                raise ImageError(f"{int(bad.sum()):,} of {h * w:,} pixels are NaN or infinite; replace "
                                 "them (e.g. numpy.nan_to_num) before segmenting")
        if (x == x[:1, :1]).all():
            value = x[0, 0] if x.ndim == 2 else tuple(x[0, 0].tolist())
            raise ImageError(f"the image is constant (every pixel is {value}): there is nothing to segment")


def as_image(pixels: Any, *, spacing: tuple[float, float] | None = None, orientation: Orientation | None = None,
             source: str = "") -> Image:
    """The typed image of an array as displayed (gray, RGB, RGBA, channel-first; any numeric type)."""
    a = np.asarray(pixels)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype.kind not in "uif":
        raise ImageError(f"{source + ': ' if source else ''}unsupported pixel type {a.dtype}")
    return Image(_channels_last(a), spacing, orientation, source)


@dataclass(eq=False)
class Scan:
    """What one file (or DICOM series folder) holds: one image or a stack of planes, and what a mask writer
    needs to write a mask beside it."""

    pixels: np.ndarray  # (H, W[, 3]) one image, or (Z, H, W[, 3]) a stack of planes, as displayed
    rgb: bool  # the last axis holds colours
    spacing: tuple[float, ...] | None = None  # mm per pixel along each spatial axis of ``pixels`` (Z first)
    orientation: Orientation | None = None  # of each plane
    source: str = ""  # the file or folder
    kind: str = "image"  # "image" (PNG, TIFF, ...), "dicom" or "nifti"
    reference: Any = field(default=None, repr=False)  # what the format's mask writer needs (headers, affine)

    @property
    def planes(self) -> int:
        """Number of 2D planes."""
        return self.pixels.shape[0] if self.pixels.ndim == (4 if self.rgb else 3) else 1

    @property
    def plane_shape(self) -> tuple[int, int]:
        return tuple(self.pixels.shape[-3:-1] if self.rgb else self.pixels.shape[-2:])

    def plane(self, z: int = 0) -> Image:
        """Plane ``z`` as a typed image."""
        stack = self.planes > 1 or self.pixels.ndim == (4 if self.rgb else 3)
        pixels = self.pixels[z] if stack else self.pixels
        spacing = tuple(self.spacing[-2:]) if self.spacing else None
        name = f"{self.source} (slice {z + 1} of {self.planes})" if stack and self.planes > 1 else self.source
        return as_image(pixels, spacing=spacing, orientation=self.orientation, source=name)
