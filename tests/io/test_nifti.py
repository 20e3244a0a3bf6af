"""NIfTI in and out: a volume with a non-identity affine opens as a stack with its spacing and orientation, and the
mask written for it keeps its shape, affine and orientation codes; a volume with NaNs is refused when segmented."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.io import Orientation, read_image, read_scan, write_mask

from ..conftest import SAMPLE_DATA

XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))


def _affine() -> np.ndarray:
    """Voxels 0.7 x 0.8 x 2.5 mm, the i axis toward the patient's left, j posterior (LPS-like, as dcm2niix keeps a
    flipped axis), rotated 10 degrees about the feet-head axis and shifted."""
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.7, -0.8, 2.5])
    affine[:3, 3] = [90.0, 120.0, -40.0]
    return affine


def volume(path, planes: list[np.ndarray], dtype=np.int16) -> tuple:
    import nibabel as nib

    data = np.stack(planes).T.astype(dtype)  # (i, j, k): columns, rows, slices
    img = nib.Nifti1Image(data, _affine())
    img.set_qform(_affine(), code=1)
    img.set_sform(_affine(), code=2)
    nib.save(img, str(path))
    return path, data


def test_a_volume_opens_as_a_stack_with_its_spacing_and_orientation(tmp_path):
    planes = [read_image(p) for p in XRAYS[:3]]
    path, _ = volume(tmp_path / "ct.nii.gz", planes)
    scan = read_scan(path)
    assert scan.kind == "nifti" and scan.planes == 3 and scan.pixels.shape == (3, 224, 224)
    assert np.array_equal(scan.pixels[1], planes[1]) and scan.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert scan.orientation == Orientation("L", "P", "NIfTI affine")


def test_the_mask_keeps_the_volume_s_shape_affine_and_orientation(tmp_path):
    import nibabel as nib

    planes = [read_image(p) for p in XRAYS[:3]]
    path, data = volume(tmp_path / "ct.nii.gz", planes)
    scan = read_scan(path)
    mask = scan.pixels > 120
    out = write_mask(tmp_path / "mask.nii.gz", mask, scan)
    back = nib.load(str(out))
    source = nib.load(str(path))
    assert back.shape == data.shape and back.get_data_dtype() == np.uint8
    np.testing.assert_allclose(back.affine, source.affine)
    assert int(back.header["qform_code"]) == 1 and int(back.header["sform_code"]) == 2
    np.testing.assert_allclose(back.get_qform(), source.get_qform())
    assert nib.aff2axcodes(back.affine) == nib.aff2axcodes(source.affine)
    assert np.array_equal(np.asarray(back.dataobj) != 0, (data > 120))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz", "mask.nii.gz"]  # no temporary file left


def test_a_mask_of_the_wrong_shape_or_for_another_format_is_refused(tmp_path):
    planes = [read_image(p) for p in XRAYS[:2]]
    scan = read_scan(volume(tmp_path / "v.nii", planes)[0])
    with pytest.raises(ValueError, match="do not match"):
        write_mask(tmp_path / "m.nii", np.zeros((2, 224, 223), bool), scan)
    with pytest.raises(ValueError, match="needs a DICOM image"):
        write_mask(tmp_path / "m.dcm", np.zeros((2, 224, 224), bool), scan)
    assert not (tmp_path / "m.nii").exists() and not (tmp_path / "m.dcm").exists()


def test_a_4d_series_is_one_clear_line(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), np.int16), np.eye(4)), str(tmp_path / "fmri.nii.gz"))
    with pytest.raises(ValueError, match="4-D") as err:
        read_scan(tmp_path / "fmri.nii.gz")
    assert "\n" not in str(err.value) and "fmri.nii.gz" in str(err.value)
