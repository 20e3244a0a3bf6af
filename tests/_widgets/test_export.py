"""Export from the widget: the corrected masks written into a folder the person picks (PNG or TIFF named after their
images, or a DICOM-SEG / NIfTI file beside each DICOM or NIfTI source), never over existing files, and saying
which edited masks are not in it because they were not marked."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtWidgets import QFileDialog

from napari_amvlm.io import read_image

from ..conftest import SAMPLE_DATA
from ..io._fixtures import film
from ..io.test_nifti import volume
from ._helpers import TIMEOUT_MS, human_labels, mark, sample_segmented_and_corrected, segment

pytestmark = pytest.mark.gui
XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))


def _exported(qtbot, w) -> str:
    qtbot.waitUntil(lambda: not w.busy and w.ui.status.text().startswith(("Wrote", "No corrected", "Exporting")) or
                    "already holds" in w.ui.status.text(), timeout=TIMEOUT_MS)
    return w.ui.status.text()


def test_the_menu_writes_each_corrected_mask_as_a_png_named_after_its_image(docked, qtbot, tmp_path, monkeypatch):
    viewer, w = docked
    sample_segmented_and_corrected(viewer, w, qtbot)
    third = viewer.add_image(read_image(XRAYS[1]), name="third")
    viewer.layers.selection.active = third
    unmarked = segment(qtbot, w, "lower right lung")
    unmarked.paint((100, 100), 1)  # edited, never marked: not a human label, so not exported
    out = tmp_path / "masks"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    w.ui.export_png.trigger()
    status = _exported(qtbot, w)
    assert status.startswith("Wrote 2 mask files (PNG files) into masks."), status
    assert "1 edited mask not marked corrected is not in it" in status
    names = {w.project.image(i).name: i for i in w.project.image_ids("corrected")}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in names)
    labels = human_labels(w.project)
    for name, image_id in names.items():
        written = read_image(out / f"{name}.png")
        stored = np.frombuffer(labels[image_id], np.uint8).reshape(written.shape)
        assert stored.any() and np.array_equal(written != 0, stored != 0)


def test_an_export_never_overwrites_and_writes_nothing_when_one_file_exists(docked, qtbot, tmp_path):
    viewer, w = docked
    sample_segmented_and_corrected(viewer, w, qtbot)
    out = tmp_path / "masks"
    out.mkdir()
    first = w.project.image(w.project.image_ids("corrected")[0]).name
    (out / f"{first}.tif").write_bytes(b"someone else's file")
    w.export_masks(out, "tif")
    status = _exported(qtbot, w)
    assert "already holds 1 of these mask files" in status and "Nothing was written" in status, status
    assert [p.name for p in out.iterdir()] == [f"{first}.tif"]
    assert (out / f"{first}.tif").read_bytes() == b"someone else's file"


def test_with_no_corrected_mask_it_says_what_to_do(docked, qtbot, tmp_path):
    viewer, w = docked
    viewer.add_image(read_image(XRAYS[0]), name="film")
    segment(qtbot, w, "lower left lung")
    w.export_masks(tmp_path / "masks", "png")
    assert "No corrected masks to export yet" in _exported(qtbot, w)
    assert not (tmp_path / "masks").exists() or not any((tmp_path / "masks").iterdir())


def test_a_dicom_film_gets_its_corrected_mask_as_a_dicom_seg_beside_it(docked, qtbot, tmp_path, monkeypatch):
    import highdicom as hd
    import pydicom

    viewer, w = docked
    source = film(tmp_path / "film.dcm", read_image(XRAYS[0]))
    (layer,) = viewer.open(str(source), plugin="napari-amvlm")
    labels = segment(qtbot, w, "lower left lung", layer)
    labels.paint((120, 60), 1)
    viewer.layers.selection.active = labels
    (image_id,) = mark(qtbot, w)
    out = tmp_path / "seg"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(source)], ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    w.ui.export_beside_files.trigger()
    status = _exported(qtbot, w)
    assert status.startswith("Wrote 1 mask file (DICOM-SEG / NIfTI files) into seg."), status
    seg = hd.seg.segread(str(out / "film.dcm"))
    stored = np.asarray(w.project.read_mask(image_id, "human")[...])
    uid = pydicom.dcmread(source).SOPInstanceUID
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[uid], segment_numbers=[1])[0, ..., 0]
    assert stored.any() and np.array_equal(pixels != 0, stored != 0)
    assert seg.SegmentSequence[0].SegmentLabel == "lower left lung"


def test_a_nifti_volume_segmented_slice_by_slice_gets_one_nifti_mask_with_its_affine(docked, qtbot, tmp_path,
                                                                                    monkeypatch):
    import nibabel as nib

    viewer, w = docked
    source, _ = volume(tmp_path / "mr.nii.gz", [read_image(p) for p in XRAYS[:3]])
    (layer,) = viewer.open(str(source), plugin="napari-amvlm")
    w.ui.stack.setCurrentText("all slices")
    labels = segment(qtbot, w, "lower left lung", layer)
    labels.paint((1, 120, 60), 1)  # on the middle slice
    viewer.layers.selection.active = labels
    ids = mark(qtbot, w)
    assert len(ids) == 3
    out = tmp_path / "masks"
    w.export_masks(out, "beside", [str(source)])
    status = _exported(qtbot, w)
    assert status.startswith("Wrote 1 mask file"), status
    back = nib.load(str(out / "mr.nii.gz"))
    assert np.allclose(back.affine, nib.load(str(source)).affine)
    written = np.asarray(back.dataobj).T  # (slices, rows, columns), as the layer shows them
    stored = np.stack([np.asarray(w.project.read_mask(i, "human")[...]) for i in ids])
    assert written.shape == labels.data.shape and np.array_equal(written != 0, stored != 0)
    assert np.array_equal(written != 0, np.asarray(labels.data) != 0)
