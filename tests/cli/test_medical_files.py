"""``amvlm segment`` on the files of clinics: a DICOM film (mask as DICOM-SEG), a DICOM series and a NIfTI volume
(masks beside them), the side convention the file gives, and bad files: one clear line each, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.cli import main
from napari_amvlm.io import read_image

from ..conftest import SAMPLE_DATA
from ..io._fixtures import film, series
from ..io.test_nifti import volume

XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))


def segment(capsys, model, image, out, *extra) -> tuple[int, str, str]:
    code = main(["segment", "--model", str(model), "--image", str(image), "--text", "lower left lung", "--out",
                 str(out), *map(str, extra)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(code: int, err: str, *words: str) -> str:
    lines = [line for line in err.strip().splitlines() if "Warning" not in line and "warn(" not in line]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("amvlm segment: error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def test_a_film_gets_a_dicom_seg_and_the_patient_s_sides(capsys, tiny_seg_dir, tmp_path):
    import highdicom as hd

    path = film(tmp_path / "film.dcm", read_image(XRAYS[0]))
    code, out, err = segment(capsys, tiny_seg_dir, path, tmp_path / "seg.dcm", "--uncertainty", tmp_path / "u.tif")
    assert code == 0, err
    assert "left/right: the patient's, read from the file" in out and "Patient Orientation" in out
    seg = hd.seg.segread(str(tmp_path / "seg.dcm"))
    assert seg.SegmentSequence[0].SegmentLabel == "lower left lung" and (tmp_path / "u.tif").is_file()


def test_a_series_and_a_volume_are_segmented_slice_by_slice(capsys, tiny_seg_dir, tmp_path):
    import nibabel as nib
    import tifffile

    planes = [read_image(p) for p in XRAYS[:3]]
    hounsfield = [p.astype(np.int16) * 4 + 700 for p in planes]  # stored values: -324 to 696 HU in the window
    code, out, err = segment(capsys, tiny_seg_dir, series(tmp_path / "ct", hounsfield), tmp_path / "m.tif")
    assert code == 0 and tifffile.imread(tmp_path / "m.tif").shape == (3, 224, 224)
    assert "segmented 3 of 3 slices" in err
    path, data = volume(tmp_path / "v.nii.gz", planes)
    code, out, err = segment(capsys, tiny_seg_dir, path, tmp_path / "m.nii.gz", "--sides", "image")
    back = nib.load(str(tmp_path / "m.nii.gz"))
    assert code == 0 and back.shape == data.shape and np.allclose(back.affine, nib.load(str(path)).affine)
    assert "left/right: the image's sides as displayed" in out


def test_a_volume_with_nans_is_one_line_and_nothing_is_written(capsys, tiny_seg_dir, tmp_path):
    planes = [read_image(p).astype(np.float32) for p in XRAYS[:2]]
    planes[1][10:20, 10:20] = np.nan
    path, _ = volume(tmp_path / "nan.nii.gz", planes, dtype=np.float32)
    code, _, err = segment(capsys, tiny_seg_dir, path, tmp_path / "m.nii.gz")
    one_line(code, err, "slice 2 of 2", "100 of 50,176 pixels are NaN or infinite")
    assert not (tmp_path / "m.nii.gz").exists()


@pytest.mark.parametrize("damage, reason", [("truncate", "truncated"), ("no pixels", "holds no image")])
def test_a_damaged_dicom_is_one_line_and_nothing_is_written(capsys, tiny_seg_dir, tmp_path, damage, reason):
    import pydicom

    path = film(tmp_path / "film.dcm", read_image(XRAYS[0]))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-30000])
    else:
        ds = pydicom.dcmread(path)
        del ds.PixelData
        ds.save_as(path)
    code, _, err = segment(capsys, tiny_seg_dir, path, tmp_path / "seg.dcm")
    one_line(code, err, str(path), reason)
    assert not (tmp_path / "seg.dcm").exists()


@pytest.mark.parametrize("image, out, words", [
    ("png", "m.nii.gz", ("needs a NIfTI image",)), ("png", "m.dcm", ("needs a DICOM image",)),
    ("series", "m.png", ("a PNG holds one plane", ".dcm")), ("png", "m.jpg", ("unsupported mask format",)),
])  # fmt: skip
def test_a_mask_format_the_image_cannot_have_is_refused_first(capsys, tiny_seg_dir, tmp_path, image, out, words):
    path = XRAYS[0] if image == "png" else series(tmp_path / "ct", [read_image(p) for p in XRAYS[:2]])
    code, _, err = segment(capsys, tiny_seg_dir, path, tmp_path / out)
    one_line(code, err, *words)
    assert not (tmp_path / out).exists()


def test_project_add_reads_dicom_films_series_and_nifti_volumes(capsys, tmp_path):
    from napari_amvlm.project import Project

    png = read_image(XRAYS[0])
    hounsfield = [read_image(p).astype(np.int16) * 4 + 700 for p in XRAYS[1:4]]
    inputs = [film(tmp_path / "film.dcm", 255 - png, "MONOCHROME1"), series(tmp_path / "ct", hounsfield),
              volume(tmp_path / "mr.nii.gz", [read_image(p) for p in XRAYS[4:6]])[0]]
    assert main(["project", "create", str(tmp_path / "p.amvlm")]) == 0
    assert main(["project", "add", str(tmp_path / "p.amvlm"), *map(str, inputs)]) == 0, capsys.readouterr().err
    project = Project.open(tmp_path / "p.amvlm")
    names = sorted(r.name for r in project.images())
    assert names == ["ct_z0000", "ct_z0001", "ct_z0002", "film", "mr_z0000", "mr_z0001"]
    film_id = project.find_by_name("film")
    assert np.array_equal(np.asarray(project.read_image(film_id)[...]), png)  # as displayed: bone bright
    assert project.image(project.find_by_name("ct_z0001")).n_slices == 3
