"""Image and mask files of the annotation project store: hashing, reading images into 2D planes, checking
mask values and writing mask files. No zarr here (that is :mod:`.arrays`)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import IMAGE_SUFFIXES, is_image_file, read_scan
from ..io.dicom import dicom_files

MASK_PREFIXES = ("mask_", "mask-")  # stripped when matching mask files to image names
MASK_SUFFIXES = ("_mask", "-mask", "_label", "_labels")


# --------------------------------------------------------------------------------------------- hashing
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_folder(files: list[Path]) -> str:
    """sha256 over the names and sha256s of a folder's files (a DICOM series read as one image)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def sha256_pixels(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (independent of the file format)."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def slug(name: str, limit: int = 60) -> str:
    """A file-system safe version of ``name`` (letters, digits, '.', '_', '-'; never starting with '.' or '-')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:limit] or "image"


# ---------------------------------------------------------------------------------------------- images
@dataclass
class ImagePlane:
    """One 2D image ready to be stored: gray (H, W) or colour (H, W, C)."""

    data: np.ndarray
    name: str  # proposed name (file stem, plus "_z0003" for a slice of a stack)
    rgb: bool
    source: str | None = None
    slice: int | None = None
    n_slices: int = 1
    file_sha256: str | None = None


def split_planes(array: np.ndarray, name: str, rgb: bool | None = None) -> list[ImagePlane]:
    """Split an image into 2D planes: (H, W), (H, W, C), (Z, H, W) or (Z, H, W, C) with C in {3, 4}.

    ``rgb=None`` guesses: a last axis of length 3 or 4 holds colours. Stacks become one plane per slice.
    """
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype.kind not in "uif":
        raise ValueError(f"{name}: unsupported pixel type {a.dtype}")
    if a.ndim >= 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if rgb is None:
        rgb = a.ndim in (3, 4) and a.shape[-1] in (3, 4)
    if rgb and (a.ndim not in (3, 4) or a.shape[-1] not in (3, 4)):
        raise ValueError(f"{name}: rgb=True needs a last axis of 3 or 4 channels, got shape {a.shape}")
    plane_ndim = 3 if rgb else 2
    if a.ndim == plane_ndim:
        return [ImagePlane(a, name, rgb)]
    if a.ndim == plane_ndim + 1:
        n = a.shape[0]
        return [ImagePlane(a[i], f"{name}_z{i:04d}", rgb, slice=i, n_slices=n) for i in range(n)]
    raise ValueError(f"{name}: cannot store an image of shape {a.shape} (2D, RGB or a stack of them)")


def read_image_file(path: str | os.PathLike, rgb: bool | None = None) -> list[ImagePlane]:
    """Read an image file (any format :func:`napari_amvlm.io.read_scan` reads: PNG, TIFF, ..., DICOM, NIfTI) or a
    folder holding one DICOM series, as displayed, and split it into planes that remember their source."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such image file: {path}")
    scan = read_scan(path)
    stem = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
    planes = split_planes(scan.pixels, stem or path.name, scan.rgb if rgb is None and scan.kind != "image" else rgb)
    digest = source_digest(path)
    for p in planes:
        p.source, p.file_sha256 = str(path.resolve()), digest
    return planes


_DIGESTS: OrderedDict[tuple, str] = OrderedDict()  # (path, what its files' stat says) -> sha256, most recent last
_DIGESTS_MAX = 64
_DIGESTS_LOCK = threading.Lock()


def source_digest(source: Path) -> str:
    """sha256 of an image file's bytes, or of a DICOM series folder's files: what names the source of its planes.

    Remembered per path while the file's (or each series file's) size, modification time and inode stay the same,
    so stepping through the slices of a large series hashes it once, not once per slice."""
    source = Path(source)
    files = [source] if source.is_file() else dicom_files(source)
    stats = tuple((f.name, st.st_size, st.st_mtime_ns, st.st_ino) for f in files for st in (f.stat(),))
    key = (str(source.resolve()), stats)
    with _DIGESTS_LOCK:
        if key in _DIGESTS:
            _DIGESTS.move_to_end(key)
            return _DIGESTS[key]
    digest = sha256_file(source) if source.is_file() else sha256_folder(files)
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest
        while len(_DIGESTS) > _DIGESTS_MAX:
            _DIGESTS.popitem(last=False)
    return digest


def list_image_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by suffix; DICOM files also by content), sorted by name; hidden files are
    skipped."""
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and not p.name.startswith(".") and is_image_file(p))


def list_mask_files(folder: str | os.PathLike) -> list[Path]:
    """Mask files (PNG, TIFF, ... by suffix) in ``folder``, sorted by name; hidden files are skipped."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


# ----------------------------------------------------------------------------------------------- masks
def label_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned dtype that holds ``max_value``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"label value {max_value} does not fit in 32 bits")


def normalize_mask(mask: Any, plane_shape: tuple[int, int]) -> tuple[np.ndarray, int | None, str | None]:
    """Check a label mask; return (stored array, foreground, source dtype).

    Masks are integer labels, 0 = background, of the image's (H, W) shape. A binary mask {0, v} (v >= 1) is
    stored as 0/1 uint8 with ``foreground = v``; a boolean mask has no foreground (None); any other mask
    (instance labels) keeps its values. The source dtype (unsigned integer masks only) is remembered, so
    that export gives back the same values in the same type.
    """
    m = np.asarray(mask)
    if m.dtype == bool:
        m, source = m.astype(np.uint8), None
    elif m.dtype.kind not in "ui":
        raise ValueError(f"a mask must hold integer labels, got dtype {m.dtype} (threshold probabilities first)")
    else:
        source = m.dtype.name if m.dtype.kind == "u" else None
    if m.shape != tuple(plane_shape):
        raise ValueError(f"mask shape {m.shape} does not match the image's {tuple(plane_shape)}")
    if m.size and m.min() < 0:
        raise ValueError("a mask cannot hold negative labels")
    top = int(m.max()) if m.size else 0
    if top >= 1 and np.array_equal(m == 0, m != top):
        return (m == top).astype(np.uint8), top, source
    return m.astype(source or label_dtype(top), copy=False), None, source


def export_values(mask: np.ndarray, foreground: int | None, source_dtype: str | None = None) -> np.ndarray:
    """The pixel values a mask is exported with: a binary 0/1 mask becomes 0/``foreground``; the values are
    cast to ``source_dtype`` (the type the mask was imported with) when they fit, else to the smallest type."""
    m = np.asarray(mask)
    top = int(m.max()) if m.size else 0
    if top <= 1 and foreground is not None:
        m, top = m.astype(label_dtype(foreground)) * label_dtype(foreground).type(foreground), foreground
    if source_dtype is not None and top <= np.iinfo(source_dtype).max:
        return m.astype(source_dtype, copy=False)
    return m.astype(label_dtype(top), copy=False)


def mask_stem(path: Path, prefix: str | None = None) -> str:
    """The image name a mask file refers to: its stem without a mask prefix/suffix."""
    stem = path.stem
    if prefix:
        return stem.removeprefix(prefix)
    for p in MASK_PREFIXES:
        if stem.startswith(p):
            return stem[len(p):]
    for s in MASK_SUFFIXES:
        if stem.endswith(s):
            return stem[: -len(s)]
    return stem
