"""DICOM-SEG out (highdicom): a mask as a DICOM Segmentation object that references its source image or series.

The mask of a DICOM scan (:func:`napari_amvlm.io.dicom.read_dicom`) becomes a binary Segmentation with one segment:
its label is the prompt (cut to the 64 characters DICOM allows), its category "Morphologically Abnormal Structure"
and type "Lesion" (SNOMED CT), its algorithm napari-amvlm (automatic for a prediction, semi-automatic for a mask a
person corrected). The segmentation's frames reference the source files' SOP instances (and frames), so PACS viewers,
3D Slicer and OHIF show it over its image. The source files must still be where they were read from: their headers
are read again (no pixel data).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .dicom import DicomSource
from .image import Scan

LABEL_CHARS = 64  # DICOM LO


def segment_label(text: str) -> str:
    """``text`` as a DICOM LO value: no backslash or control characters, at most 64 characters."""
    clean = re.sub(r"[\s\\\x00-\x1f\x7f]+", " ", str(text)).strip()
    return clean[:LABEL_CHARS].rstrip() or "segment"


def write_dicom_seg(path: str | os.PathLike, mask: np.ndarray, scan: Scan, label: str, *,
                    corrected: bool = False) -> Path:
    """Write ``mask`` (the scan's planes: (H, W) or (Z, H, W), non-zero = inside) as a DICOM-SEG beside ``scan``'s
    source, atomically. ``corrected``: a person edited the mask (semi-automatic), else a prediction."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from .. import __version__

    source = scan.reference
    if not isinstance(source, DicomSource):
        raise ValueError("a DICOM-SEG needs a DICOM image to reference; write this mask as .png, .tif or, for a "
                         "NIfTI image, .nii.gz")
    frames = np.asarray(mask) != 0
    frames = frames[None] if frames.ndim == 2 else frames
    if frames.shape != (scan.planes, *scan.plane_shape):
        raise ValueError(f"the mask's shape {frames.shape} does not match the image's planes "
                         f"{(scan.planes, *scan.plane_shape)}")
    missing = [f for f in source.files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"the source DICOM file {missing[0]} is gone: a DICOM-SEG references its source")
    images = [pydicom.dcmread(f, stop_before_pixels=True) for f in source.files]
    algorithm = hd.AlgorithmIdentificationSequence(name="napari-amvlm", version=__version__,
                                                   family=codes.cid7162.ArtificialIntelligence)
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=segment_label(label),
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if corrected
                        else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC),
        algorithm_identification=algorithm)
    seg = hd.seg.Segmentation(
        source_images=images, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=9001,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="napari-amvlm",
        manufacturer_model_name="napari-amvlm", software_versions=__version__, device_serial_number="none",
        series_description=segment_label(f"AMVLM {label}"))
    atomic_write(path, lambda p: seg.save_as(p))
    return Path(path)
