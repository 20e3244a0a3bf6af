"""DICOM-SEG out: a mask written for a film and for a CT series reads back with highdicom and pydicom with the same
pixels, and references its source instances."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.io import read_image, read_scan, write_mask
from napari_amvlm.io.dicomseg import segment_label

from ..conftest import SAMPLE_DATA
from ._fixtures import film, series

XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))


def _read_back(path, sources):
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(str(path))
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in sources]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])[..., 0]
    raw = pydicom.dcmread(path)
    referenced = [i.ReferencedSOPInstanceUID for s in raw.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence]
    return seg, pixels, raw, uids, referenced


def test_the_mask_of_a_film_reads_back_and_references_it(tmp_path):
    png = read_image(XRAYS[0])
    scan = read_scan(film(tmp_path / "film.dcm", png))
    mask = png > 100
    write_mask(tmp_path / "seg.dcm", mask, scan, label="lower left lung\\ and more")
    seg, pixels, raw, uids, referenced = _read_back(tmp_path / "seg.dcm", scan.reference.files)
    assert np.array_equal(pixels[0] != 0, mask)
    assert referenced == uids and raw.Modality == "SEG" and raw.SegmentationType == "BINARY"
    assert raw.SegmentSequence[0].SegmentLabel == "lower left lung and more"
    assert raw.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"


def test_the_corrected_mask_of_a_series_reads_back_slice_by_slice(tmp_path):
    import pydicom

    planes = [read_image(p).astype(np.int16) * 4 for p in XRAYS[:3]]
    scan = read_scan(series(tmp_path / "ct", planes, order=[1, 2, 0]))
    mask = np.zeros((3, 224, 224), bool)
    mask[0, 10:40, 20:60] = True
    mask[2, 100:150, 50:90] = True
    write_mask(tmp_path / "seg.dcm", mask, scan, label="nodule", corrected=True)
    seg, pixels, raw, uids, referenced = _read_back(tmp_path / "seg.dcm", scan.reference.files)
    assert np.array_equal(pixels != 0, mask)  # each slice's mask on its own source instance
    assert sorted(referenced) == sorted(uids) and raw.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    source = pydicom.dcmread(scan.reference.files[0], stop_before_pixels=True)
    assert raw.StudyInstanceUID == source.StudyInstanceUID and raw.FrameOfReferenceUID == source.FrameOfReferenceUID


def test_a_seg_needs_its_source_and_the_right_shape(tmp_path):
    png = read_image(XRAYS[0])
    path = film(tmp_path / "film.dcm", png)
    scan = read_scan(path)
    with pytest.raises(ValueError, match="does not match"):
        write_mask(tmp_path / "seg.dcm", np.zeros((100, 100), bool), scan)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="gone"):
        write_mask(tmp_path / "seg.dcm", png > 0, scan)
    assert not (tmp_path / "seg.dcm").exists()


@pytest.mark.parametrize("text, label", [("a\\b", "a b"), ("x" * 80, "x" * 64), ("\n", "segment"), ("", "segment")])
def test_segment_labels_are_dicom_values(text, label):
    assert segment_label(text) == label
