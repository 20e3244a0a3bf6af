"""The napari reader contribution claims DICOM files and series folders and NIfTI files (and still projects), and
returns one image layer with the spacing as its scale and what the file said about its orientation."""

from __future__ import annotations

import numpy as np

from napari_amvlm import _reader
from napari_amvlm.io import read_image

from ..conftest import SAMPLE_DATA
from ._fixtures import film, series
from .test_nifti import volume

XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))


def test_the_reader_claims_clinical_files_only(tmp_path):
    path = film(tmp_path / "film.dcm", read_image(XRAYS[0]))
    no_suffix = tmp_path / "IM0001"
    no_suffix.write_bytes(path.read_bytes())
    folder = series(tmp_path / "ct", [read_image(p) for p in XRAYS[:2]])
    nifti = volume(tmp_path / "v.nii.gz", [read_image(p) for p in XRAYS[:2]])[0]
    for p in (path, no_suffix, folder, nifti, [str(path)]):
        assert _reader.napari_get_reader(p if isinstance(p, list) else str(p)) is _reader.read_image
    assert _reader.napari_get_reader(str(XRAYS[0])) is None
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("DICM")
    assert _reader.napari_get_reader(str(tmp_path / "notes")) is None  # a folder holding no DICOM file


def test_a_film_layer_carries_its_scale_and_orientation(tmp_path):
    png = read_image(XRAYS[0])
    ((data, kwargs, kind),) = _reader.read_image(str(film(tmp_path / "film.dcm", png, orientation=("R", "F"))))
    assert kind == "image" and np.array_equal(data, png) and kwargs["scale"] == [0.2, 0.2]
    info = kwargs["metadata"][_reader.IMAGE_KEY]
    assert info["kind"] == "dicom" and info["orientation"] == {"rows": "R", "columns": "F",
                                                               "source": "Patient Orientation"}
    assert kwargs["contrast_limits"] == [0, 255] and kwargs["rgb"] is False
