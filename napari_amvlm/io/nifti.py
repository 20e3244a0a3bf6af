"""NIfTI in and out (nibabel): a 2D image or a 3D volume with its spacing and orientation, and a mask written beside
it with the input's affine and header orientation.

A volume of voxel axes (i, j, k) opens as a stack of k slices, each with j rows and i columns, the way ITK-SNAP and
3D Slicer lay out a slice: pixels (k, j, i), spacing (dk, dj, di) from the header's zooms. The orientation of the
slices comes from the affine (:func:`nibabel.aff2axcodes`): the direction of increasing i runs along a row, that of
j down a column. A mask written for it goes back to (i, j, k) with the same affine, the same qform and sform codes,
as unsigned 8-bit labels. Values are read as stored (scaled by the header's slope and intercept): no window, no
clipping; a NaN voxel is refused when the image is segmented, not when it is opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnreadableImageError, reading
from .image import Orientation, Scan
from .limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

SUFFIXES = (".nii", ".nii.gz")
_RAS = {"R": "R", "L": "L", "A": "A", "P": "P", "S": "H", "I": "F"}  # nibabel's letters -> patient directions


@dataclass(frozen=True)
class NiftiSource:
    """What a mask written beside the image keeps of it."""

    affine: np.ndarray  # (4, 4) voxel -> world
    header: Any  # the input's nibabel header
    shape: tuple[int, ...]  # the voxel shape (i, j[, k])


def is_nifti(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(SUFFIXES)


def read_nifti(path: str | os.PathLike) -> Scan:
    """A NIfTI-1 or NIfTI-2 file (2D, or 3D as a stack of slices; see the module docstring)."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such NIfTI file: {path}")
    with reading(path):
        img = nib.load(str(path))
    shape = tuple(int(n) for n in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        raise UnreadableImageError(path, f"a NIfTI of shape {shape} ({len(shape)}-D) is not supported: one 2D image "
                                         "or one 3D volume")
    if shape[0] * shape[1] > MAX_IMAGE_PIXELS or int(np.prod(shape, dtype=np.int64)) * 8 > MAX_IMAGE_BYTES:
        raise UnreadableImageError(path, f"it declares {' x '.join(map(str, shape))} voxels, more than napari-amvlm "
                                         "reads from one file")
    if img.get_data_dtype().names:  # RGB24 and other structured voxels
        raise UnreadableImageError(path, "colour NIfTI voxels are not supported")
    with reading(path):
        data = np.asanyarray(img.dataobj).reshape(shape)
    data = data.astype(np.float32) if data.dtype == np.float64 else data
    zooms = tuple(float(z) for z in img.header.get_zooms()[: len(shape)])
    pixels = np.ascontiguousarray(data.T)  # (i, j[, k]) -> ([k,] j, i)
    return Scan(pixels, False, tuple(z if z > 0 else 1.0 for z in zooms[::-1]), _orientation(img.affine),
                str(path), "nifti", NiftiSource(np.asarray(img.affine, float), img.header.copy(), shape))


def _orientation(affine: np.ndarray) -> Orientation | None:
    import nibabel as nib

    try:
        codes = nib.aff2axcodes(affine)
        return Orientation(_RAS[codes[0]], _RAS[codes[1]], "NIfTI affine")
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def write_nifti_mask(path: str | os.PathLike, mask: np.ndarray, scan: Scan) -> Path:
    """Write ``mask`` (the scan's pixel layout without colours: ([k,] j, i)) as a NIfTI of uint8 labels with the
    scan's affine and orientation codes, atomically. ``scan`` must come from :func:`read_nifti`."""
    import nibabel as nib

    source = scan.reference
    if not isinstance(source, NiftiSource):
        raise ValueError("a NIfTI mask needs a NIfTI image (its affine); write this mask as .png, .tif or, for a "
                         "DICOM image, .dcm")
    labels = np.asarray(mask)
    if labels.dtype.kind not in "biu" or (labels.size and int(labels.max()) > 255):
        raise ValueError("a NIfTI mask holds labels 0-255")
    labels = np.ascontiguousarray(labels.astype(np.uint8).T)
    if labels.shape != source.shape:
        raise ValueError(f"the mask's voxels {labels.shape} do not match the image's {source.shape}")
    header = source.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    out = kind(labels, source.affine, header=header)
    qcode, scode = int(source.header["qform_code"]), int(source.header["sform_code"])
    out.set_qform(source.header.get_qform() if qcode else source.affine, code=qcode)
    out.set_sform(source.header.get_sform() if scode else source.affine, code=scode)
    path = Path(path)
    ext = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
    tmp = path.with_name(f".{path.name[: -len(ext)]}.part{ext}")  # nibabel compresses by the name's suffix
    try:
        nib.save(out, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
