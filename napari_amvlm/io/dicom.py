"""DICOM in (pydicom): a single-frame or multi-frame file, or a folder holding one series, read as a radiologist sees
it.

The display transform, per the standard's order: the modality LUT or rescale slope/intercept; then the VOI LUT or the
window centre/width (the first of them, as pydicom applies it), whose output range is mapped to 0-255 (8-bit, as the
models' training images are), with MONOCHROME1 inverted so bone is bright. A grayscale file with neither keeps its
modality values (scaled like any other 16-bit or float image later), MONOCHROME1 inverted within its range. Colour
files are read as RGB. Pixel spacing (Pixel Spacing, else Imager Pixel Spacing) becomes the image's spacing; Image
Orientation (Patient), else Patient Orientation, its orientation (:mod:`napari_amvlm.inference.views`).

A series folder is sorted along the slices' normal by Image Position (Patient), else by Instance Number. Every name
and value in a file is data: file names inside a folder are only listed, tag values are checked before use, and the
pixel count is bounded from the headers before anything is decoded. A file that cannot be read gives one line naming
it and the reason (truncated, no pixel data, a compression no installed decoder reads, ...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnreadableImageError
from .image import Orientation, Scan
from .limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

SUFFIXES = (".dcm", ".dicom")
MAX_SERIES_FILES = 5000  # files of one folder that are looked at
_LPS = ("L", "P", "H")  # patient directions of +x, +y, +z in DICOM's patient coordinates
_OPPOSITE = {"L": "R", "P": "A", "H": "F"}
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class DicomSource:
    """The files a scan was read from, in the scan's plane order (the DICOM-SEG writer reads their headers)."""

    files: tuple[str, ...]
    frames: int  # frames of each file (1 for a series of single-frame files)


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether a file starts like a DICOM file (the 'DICM' marker after the 128-byte preamble)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def dicom_files(folder: str | os.PathLike) -> list[Path]:
    """The DICOM files directly inside ``folder`` (by content), sorted by name; hidden files are skipped."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    return [p for p in files[:MAX_SERIES_FILES] if is_dicom(p)]


def is_series_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding at least one DICOM file (cheap: stops at the first)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any(is_dicom(p) for p in sorted(path.iterdir())[:MAX_SERIES_FILES] if p.is_file())


def read_dicom(path: str | os.PathLike) -> Scan:
    """A DICOM file (single- or multi-frame) or a folder holding one series, as displayed (module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such DICOM file or folder: {path}")
    headers = _series_headers(path) if path.is_dir() else [(path, _header(path))]
    _check_size(path, [h for _, h in headers])
    headers, dz = _sort_slices(headers)
    planes = [_displayed(f, _pixels(f)) for f, _ in headers]
    if any(p.shape[-2:] != planes[0].shape[-2:] or p.ndim != planes[0].ndim for p in planes):
        raise UnreadableImageError(path, "its slices differ in size")
    first = headers[0][1]
    rgb = str(first.get("PhotometricInterpretation", "")) not in _MONOCHROME
    frames = int(first.get("NumberOfFrames", 1) or 1)
    pixels = planes[0] if len(planes) == 1 else np.stack(planes)
    stack = len(planes) > 1 or frames > 1
    if not stack and pixels.ndim == (4 if rgb else 3):  # a multi-frame file of one frame
        pixels = pixels[0]
    plane = _spacing(first)
    spacing = None if plane is None else ((dz or _frame_spacing(first) or 1.0, *plane) if stack else plane)
    return Scan(pixels, rgb, spacing, orientation_of(first), str(path), "dicom",
                DicomSource(tuple(str(f) for f, _ in headers), frames))


# --------------------------------------------------------------------------------------------- headers
def _header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, defer_size=4096)  # large values (the pixel data) are not loaded here
    except InvalidDicomError:
        raise UnreadableImageError(path, "not a DICOM file") from None
    except Exception as err:  # pydicom raises many types on a damaged header
        raise UnreadableImageError(path, f"its DICOM header cannot be read ({_first_line(err)})") from err
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UnreadableImageError(path, "the DICOM file holds no image (no Pixel Data: a report, a presentation "
                                         "state or a directory rather than an image)")
    return ds


def _series_headers(folder: Path) -> list[tuple[Path, Any]]:
    files = dicom_files(folder)
    if not files:
        raise UnreadableImageError(folder, "the folder holds no DICOM file")
    headers = []
    for f in files:
        try:
            headers.append((f, _header(f)))
        except UnreadableImageError as err:
            if "no image" not in err.reason:
                raise
    if not headers:
        raise UnreadableImageError(folder, "the folder's DICOM files hold no image")
    series = {str(h.get("SeriesInstanceUID", "")) for _, h in headers}
    if len(series) > 1:
        raise UnreadableImageError(folder, f"the folder holds {len(series)} DICOM series; open the folder of one "
                                           "series")
    return headers


def _check_size(path: Path, headers: list) -> None:
    """Refuse, from the headers alone, what would decode into more than the limits of :mod:`.image`."""
    total = 0
    for ds in headers:
        try:
            rows, cols = int(ds.Rows), int(ds.Columns)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            samples = int(ds.get("SamplesPerPixel", 1))
        except (AttributeError, TypeError, ValueError):
            raise UnreadableImageError(path, "its DICOM header does not give the image's size (Rows, "
                                             "Columns)") from None
        if rows < 1 or cols < 1 or rows * cols > MAX_IMAGE_PIXELS:
            raise UnreadableImageError(path, f"it declares {cols}x{rows} pixels a frame, outside 1 to "
                                             f"{MAX_IMAGE_PIXELS:,} pixels")
        total += rows * cols * max(1, frames) * max(1, samples) * 8  # decoded as up to 64-bit values
    if total > MAX_IMAGE_BYTES:
        raise UnreadableImageError(path, f"it would decode into {total / 2**30:.1f} GiB, more than the "
                                         f"{MAX_IMAGE_BYTES / 2**30:.0f} GiB napari-amvlm reads from one file or series")


def _sort_slices(headers: list[tuple[Path, Any]]) -> tuple[list[tuple[Path, Any]], float | None]:
    """Slices in order along their normal (Image Position (Patient)), else by Instance Number; and the spacing
    between slices (mm) when the positions give it."""
    if len(headers) == 1:
        return headers, None
    try:
        iop = np.asarray([float(v) for v in headers[0][1].ImageOrientationPatient], float)
        normal = np.cross(iop[:3], iop[3:])
        depth = [float(np.dot([float(v) for v in h.ImagePositionPatient], normal)) for _, h in headers]
    except (AttributeError, TypeError, ValueError):
        order = sorted(range(len(headers)), key=lambda i: (int(headers[i][1].get("InstanceNumber", 0) or 0), i))
        return [headers[i] for i in order], None
    order = sorted(range(len(headers)), key=lambda i: depth[i])
    gaps = np.diff([depth[i] for i in order])
    dz = float(np.median(gaps)) if len(gaps) and np.median(gaps) > 0 else None
    return [headers[i] for i in order], dz


def _spacing(ds) -> tuple[float, float] | None:
    """(row, column) pixel size in mm: Pixel Spacing, else Imager Pixel Spacing, else that of the shared
    functional groups."""
    for value in (ds.get("PixelSpacing"), ds.get("ImagerPixelSpacing"), _shared(ds, "PixelMeasuresSequence",
                                                                              "PixelSpacing")):
        try:
            dy, dx = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if 0 < dy < 1e4 and 0 < dx < 1e4:
            return dy, dx
    return None


def _frame_spacing(ds) -> float | None:
    for value in (ds.get("SpacingBetweenSlices"), _shared(ds, "PixelMeasuresSequence", "SpacingBetweenSlices"),
                  ds.get("SliceThickness")):
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if 0 < v < 1e4:
            return v
    return None


def _shared(ds, sequence: str, keyword: str) -> Any:
    """A value of the shared functional groups of an enhanced multi-frame file, or None."""
    try:
        return getattr(getattr(ds.SharedFunctionalGroupsSequence[0], sequence)[0], keyword)
    except (AttributeError, IndexError, TypeError):
        return None


def _dominant(cosines: np.ndarray) -> str:
    """The patient direction a direction-cosine vector mostly points to (LPS coordinates)."""
    axis = int(np.argmax(np.abs(cosines)))
    return _LPS[axis] if cosines[axis] > 0 else _OPPOSITE[_LPS[axis]]


def orientation_of(ds) -> Orientation | None:
    """Which patient directions the rows and columns run: Image Orientation (Patient) (its direction cosines),
    else Patient Orientation (two strings of direction letters, the first the dominant); None when neither is
    there or usable."""
    iop = ds.get("ImageOrientationPatient") or _shared(ds, "PlaneOrientationSequence", "ImageOrientationPatient")
    try:
        v = np.asarray([float(x) for x in iop], float)
        if v.shape == (6,) and np.isfinite(v).all():
            return Orientation(_dominant(v[:3]), _dominant(v[3:]), "Image Orientation (Patient)")
    except (TypeError, ValueError):
        pass
    po = ds.get("PatientOrientation")
    try:
        rows, cols = (str(x).strip().upper()[:1] for x in po)
        return Orientation(rows, cols, "Patient Orientation")
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- pixels
def _pixels(path: Path) -> tuple[Any, np.ndarray]:
    """(dataset, decoded pixel array) of one file; one clear error for what cannot be decoded."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # the header was read before: what fails now is the rest of the file
        raise UnreadableImageError(path, f"the DICOM file cannot be read ({_first_line(err)})") from err
    try:
        return ds, np.asarray(ds.pixel_array)
    except NotImplementedError:
        ts = ds.file_meta.get("TransferSyntaxUID", "")
        raise UnreadableImageError(path, f"its pixel data is compressed as {getattr(ts, 'name', ts)} ({ts}), which "
                                         "no installed decoder reads") from None
    except Exception as err:  # pydicom raises ValueError, AttributeError, RuntimeError on damaged data
        text = _first_line(err)
        if "less than expected" in text or "truncated" in text.lower() or isinstance(err, EOFError):
            reason = "the DICOM file is truncated (its pixel data ends before the image does)"
        else:
            reason = f"its pixel data cannot be decoded ({text})"
        raise UnreadableImageError(path, reason) from err


def _displayed(path: Path, read: tuple[Any, np.ndarray]) -> np.ndarray:
    """The pixels as displayed (module docstring): uint8 after a VOI, else modality values; colour as RGB."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    ds, arr = read
    pi = str(ds.get("PhotometricInterpretation", ""))
    if pi == "PALETTE COLOR":
        return apply_color_lut(arr, ds)
    if pi not in _MONOCHROME:
        return arr  # pydicom gives RGB for RGB and the YBR family
    try:
        x = apply_modality_lut(arr, ds)
        voi = _voi_range(ds)
        if voi is None:
            return _invert_in_range(x, ds) if pi == "MONOCHROME1" else _compact(x)
        lo, hi = voi
        unit = np.clip((apply_voi_lut(x, _wide_voi_lut(ds)) - lo) / (hi - lo), 0.0, 1.0)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as err:
        raise UnreadableImageError(path, f"its display settings (rescale, VOI LUT, window) are not usable "
                                         f"({_first_line(err)})") from err
    if pi == "MONOCHROME1":
        unit = 1.0 - unit
    return np.rint(unit * 255.0).astype(np.uint8)


def _voi_range(ds) -> tuple[float, float] | None:
    """The output range of the VOI transform pydicom applies to ``ds`` (LUT first, else window), or None."""
    import pydicom.pixels

    lut = ds.get("VOILUTSequence")
    if lut and lut[0].get("LUTDescriptor") is not None and lut[0].get("LUTData") is not None:
        return 0.0, float(2 ** int(lut[0].LUTDescriptor[2]) - 1)
    if ds.get("WindowCenter") is None or ds.get("WindowWidth") is None:
        return None
    lo, hi = pydicom.pixels.apply_windowing(np.array([-np.inf, np.inf]), ds)  # the window's floor and ceiling
    return (float(lo), float(hi)) if hi > lo else None


def _wide_voi_lut(ds):
    """``ds``, or a copy whose VOI LUT of 8-bit entries is declared 16-bit (same values): pydicom 3.0 indexes an
    8-bit LUT with 8-bit indices, which wrap past entry 255."""
    lut = ds.get("VOILUTSequence")
    if not lut or int(lut[0].LUTDescriptor[2]) != 8 or int(lut[0].LUTDescriptor[0] or 65536) <= 256:
        return ds
    import copy

    wide = copy.copy(ds)
    item = copy.deepcopy(lut[0])
    item.LUTDescriptor = [*list(item.LUTDescriptor)[:2], 16]
    wide.VOILUTSequence = [item]
    return wide


def _invert_in_range(x: np.ndarray, ds) -> np.ndarray:
    """MONOCHROME1 without a VOI: x mirrored within the range its stored bits (and rescale) allow."""
    bits, signed = int(ds.get("BitsStored", 16)), int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds and "ModalityLUTSequence" not in ds:
        slope, icpt = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        lo, hi = sorted((lo * slope + icpt, hi * slope + icpt))
    out = (lo + hi) - x.astype(np.float64)
    return out.astype(x.dtype) if x.dtype.kind in "ui" else out.astype(np.float32)


def _compact(x: np.ndarray) -> np.ndarray:
    """Modality values in a compact type: float64 (after a rescale) as float32, integers as they are."""
    return x.astype(np.float32) if x.dtype == np.float64 else x


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
