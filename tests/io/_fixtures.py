"""DICOM and NIfTI files made by the tests from the real pixels of the shipped samples (pydicom, nibabel), as a
radiography system or a converter would write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
CT = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage


def dataset(pixels: np.ndarray, photometric: str = "MONOCHROME2", bits: int = 8, sop_class: str = DX,
            study: str | None = None, series: str | None = None, **tags):
    """A complete DICOM dataset holding ``pixels`` ((H, W) or frames (F, H, W)), with ``tags`` set on it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study or generate_uid(), series or generate_uid()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "TEST-1", "Test^Patient", "", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = \
        "20240101", "120000", "1", "", ""
    ds.Modality = "DX" if sop_class == DX else "CT"
    ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = 1, 1, "test"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.set_pixel_data(pixels, photometric, bits)
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def film(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits: int = 8,
         orientation: tuple[str, str] | None = ("L", "F"), **tags) -> Path:
    """A frontal chest film (DX) with its Patient Orientation and detector pixel spacing."""
    extra = {"PatientOrientation": list(orientation)} if orientation else {}
    ds = dataset(pixels, photometric, bits, ImagerPixelSpacing=[0.2, 0.2], **extra, **tags)
    ds.save_as(path, enforce_file_format=True)
    return path


def series(folder: Path, planes: list[np.ndarray], spacing: float = 2.5, order: list[int] | None = None) -> Path:
    """Axial CT slices (one file each, named in ``order``), positions ``spacing`` mm apart along the feet-head axis."""
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, uid, frame = generate_uid(), generate_uid(), generate_uid()
    for k in order or range(len(planes)):
        ds = dataset(planes[k].astype(np.int16), bits=16, sop_class=CT, study=study, series=uid,
                     ImageOrientationPatient=[1, 0, 0, 0, 1, 0], ImagePositionPatient=[-100, -100, k * spacing],
                     PixelSpacing=[0.7, 0.7], SliceThickness=spacing, FrameOfReferenceUID=frame,
                     InstanceNumber=len(planes) - k, RescaleSlope=1, RescaleIntercept=-1024,
                     WindowCenter=40, WindowWidth=400, PositionReferenceIndicator="")
        ds.save_as(folder / f"slice-{len(planes) - k:03d}.dcm", enforce_file_format=True)
    return folder
