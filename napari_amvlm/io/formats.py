"""Which module reads or writes a file: everyday images (:mod:`.raster`), DICOM (:mod:`.dicom`, :mod:`.dicomseg`)
and NIfTI (:mod:`.nifti`). A new format is one module plus a line here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import dicom, nifti
from .errors import UnreadableImageError
from .image import Scan
from .raster import IMAGE_SUFFIXES, read_pixels

MASK_FORMATS = {".png": "PNG (0 and 255)", ".tif": "TIFF", ".tiff": "TIFF", ".nii": "NIfTI (of a NIfTI image)",
                ".nii.gz": "NIfTI (of a NIfTI image)", ".dcm": "DICOM-SEG (of a DICOM image)"}


def suffix(path: str | os.PathLike) -> str:
    """The format suffix of a name, lower-case (".nii.gz" whole)."""
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether a file is an image any reader here reads, by its name (or, for DICOM without a suffix, content)."""
    s = suffix(path)
    return s in IMAGE_SUFFIXES or s in nifti.SUFFIXES or s in dicom.SUFFIXES or dicom.is_dicom(path)


def read_scan(path: str | os.PathLike) -> Scan:
    """Read an image file, or a folder holding one DICOM series, as displayed (see each format's module)."""
    path = Path(path)
    if path.is_dir():
        if dicom.is_series_folder(path):
            return dicom.read_dicom(path)
        raise UnreadableImageError(path, "a folder that holds no DICOM series")
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if nifti.is_nifti(path):
        return nifti.read_nifti(path)
    if suffix(path) in dicom.SUFFIXES or dicom.is_dicom(path):
        return dicom.read_dicom(path)
    pixels = read_pixels(path)
    rgb = pixels.ndim in (3, 4) and pixels.shape[-1] in (3, 4)
    return Scan(pixels, rgb, source=str(path))


def check_mask_format(path: str | os.PathLike, scan: Scan) -> None:
    """Refuse, before any work, a mask file the scan cannot be written as (ValueError, one line)."""
    s = suffix(path)
    if s not in MASK_FORMATS:
        raise ValueError(f"unsupported mask format {s or path!r}: use " + ", ".join(sorted(set(MASK_FORMATS))))
    if s in nifti.SUFFIXES and scan.kind != "nifti":
        raise ValueError(f"{path}: a NIfTI mask keeps its image's affine, so it needs a NIfTI image; write a "
                         f"{'.dcm (DICOM-SEG)' if scan.kind == 'dicom' else '.png or .tif'} mask")
    if s == ".dcm" and scan.kind != "dicom":
        raise ValueError(f"{path}: a DICOM-SEG references its DICOM source, so it needs a DICOM image; write a "
                         f"{'.nii.gz' if scan.kind == 'nifti' else '.png or .tif'} mask")
    if s == ".png" and scan.planes > 1:
        raise ValueError(f"{path}: a PNG holds one plane and the image has {scan.planes}; write a .tif stack"
                         + (" or .nii.gz" if scan.kind == "nifti" else " or .dcm" if scan.kind == "dicom" else ""))


def write_mask(path: str | os.PathLike, mask: np.ndarray, scan: Scan, label: str = "", corrected: bool = False
               ) -> Path:
    """Write a binary mask of ``scan`` (its planes: (H, W) or (Z, H, W)) in the format its name says."""
    from .dicomseg import write_dicom_seg
    from .raster import write_mask_file

    check_mask_format(path, scan)
    path, s = Path(path), suffix(path)
    if s in nifti.SUFFIXES:
        return nifti.write_nifti_mask(path, mask, scan)
    if s == ".dcm":
        return write_dicom_seg(path, mask, scan, label, corrected=corrected)
    write_mask_file(path, (np.asarray(mask) != 0).astype(np.uint8) * np.uint8(255))
    return path
