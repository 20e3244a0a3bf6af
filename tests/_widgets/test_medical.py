"""DICOM and NIfTI files opened the way users open them (File > Open or drag and drop, choosing the AMVLM reader
when napari asks which reader: ``viewer.open(..., plugin="napari-amvlm")``), then segmented in the widget: spacing
as the layer's scale, and the side convention the file gives, shown."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.io import read_image

from ..conftest import SAMPLE_DATA
from ..io._fixtures import film, series
from ..io.test_nifti import volume
from ._helpers import segment

pytestmark = pytest.mark.gui
XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))
PLUGIN = "napari-amvlm"


def test_a_dicom_film_opens_with_its_spacing_and_segments_in_the_patient_s_convention(docked, qtbot, tmp_path):
    viewer, w = docked
    png = read_image(XRAYS[0])
    (layer,) = viewer.open(str(film(tmp_path / "mirrored.dcm", png[:, ::-1], orientation=("R", "F"))), plugin=PLUGIN)
    assert np.array_equal(layer.data, png[:, ::-1]) and tuple(layer.scale) == (0.2, 0.2)
    w.ui.sides.setCurrentIndex(0)  # the widget says "image's sides": the file's orientation decides instead
    labels = segment(qtbot, w, "lower left lung", layer)
    status = w.ui.status.text()
    assert "left/right: the patient's, read from the file" in status and "Patient Orientation" in status
    assert labels.metadata["amvlm"]["sides"] == "patient" and tuple(labels.scale) == (0.2, 0.2)
    (image_id,) = labels.metadata["amvlm"]["image_ids"]  # the project keeps pixels, not the file's orientation:
    prompt = w.project.prompts(image_id)[-1]  # the prompt is recorded in the image's sides (what a round reads)
    assert (prompt.text, prompt.sides) == ("lower left lung", "image")


def test_a_film_without_orientation_keeps_the_setting_and_says_so(docked, qtbot, tmp_path):
    viewer, w = docked
    (layer,) = viewer.open(str(film(tmp_path / "plain.dcm", read_image(XRAYS[0]), orientation=None)), plugin=PLUGIN)
    segment(qtbot, w, "lower left lung", layer)
    assert "the file does not say how the image is oriented" in w.ui.status.text()


def test_a_series_folder_and_a_nifti_volume_open_as_stacks(docked, qtbot, tmp_path):
    viewer, w = docked
    hounsfield = [read_image(p).astype(np.int16) * 4 + 700 for p in XRAYS[:3]]
    (ct,) = viewer.open(str(series(tmp_path / "ct", hounsfield)), plugin=PLUGIN)
    assert ct.data.shape == (3, 224, 224) and np.allclose(ct.scale, (2.5, 0.7, 0.7))
    (mr,) = viewer.open(str(volume(tmp_path / "mr.nii.gz", [read_image(p) for p in XRAYS[:2]])[0]), plugin=PLUGIN)
    assert mr.data.shape == (2, 224, 224) and np.allclose(mr.scale, (2.5, 0.8, 0.7))
    w.ui.stack.setCurrentText("all slices")
    labels = segment(qtbot, w, "lower left lung", mr)
    assert labels.data.shape == (2, 224, 224) and "NIfTI affine" in w.ui.status.text()
