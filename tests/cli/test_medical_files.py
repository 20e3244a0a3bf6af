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


def test_project_export_writes_masks_beside_their_dicom_and_nifti_sources(capsys, tmp_path):
    import highdicom as hd
    import nibabel as nib
    import pydicom

    from napari_amvlm.project import Project

    hounsfield = [read_image(p).astype(np.int16) * 4 + 700 for p in XRAYS[:3]]
    ct = series(tmp_path / "ct", hounsfield, order=[2, 0, 1])
    mr, data = volume(tmp_path / "mr.nii.gz", [read_image(p) for p in XRAYS[3:5]])
    project = Project.create(tmp_path / "p.amvlm")
    project.add_images([ct, mr])
    masks = {}
    for rec in project.images():
        mask = np.zeros(rec.plane_shape, np.uint8)
        mask[10 + 20 * (rec.slice or 0):50, 30:90] = 1
        project.add_prompt(rec.id, "lower left lung", author="me")
        project.mark_corrected(rec.id, mask, author="me")
        masks[rec.name] = mask
    out = tmp_path / "out"
    base = ["project", "export", str(tmp_path / "p.amvlm"), str(out)]
    assert main([*base, "--format", "dcm", "--source", str(ct)]) == 0, capsys.readouterr().err
    assert main([*base, "--format", "nii.gz", "--source", str(mr)]) == 0, capsys.readouterr().err
    seg = hd.seg.segread(str(out / "ct.dcm"))
    scan_files = sorted(ct.glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    uids = [pydicom.dcmread(f).SOPInstanceUID for f in scan_files]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])[..., 0]
    assert np.array_equal(pixels, np.stack([masks[f"ct_z{k:04d}"] for k in range(3)]))
    # the prompt was recorded in the image's sides; DICOM speaks the patient's: on this axial series the image's
    # left is the patient's right
    assert seg.SegmentSequence[0].SegmentLabel == "lower right lung"
    back = nib.load(str(out / "mr.nii.gz"))
    assert np.allclose(back.affine, nib.load(str(mr)).affine)
    assert np.array_equal(np.asarray(back.dataobj).T, np.stack([masks["mr_z0000"], masks["mr_z0001"]]))
    (ct / "slice-001.dcm").unlink()  # the source changed since it was added: refused, nothing written
    code = main([*base, "--format", "dcm", "--source", str(ct), "--overwrite"])
    assert code == 1 and "no image of the project was added from this file" in capsys.readouterr().err
