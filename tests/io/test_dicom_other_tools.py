"""DICOM files written by other tools (dcmtk, GDCM, scanners), from the test files pydicom ships: the same MR slice
in six transfer syntaxes reads to the same pixels, a CT slice keeps its spacing and orientation, colour and
multi-frame files read as RGB stacks, and a truncated file is one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.io import Orientation, UnreadableImageError, read_scan


def shipped(name: str):
    from pydicom.data import get_testdata_file

    return get_testdata_file(name)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_lossless_syntaxes_read_to_the_same_pixels(name):
    reference = read_scan(shipped("MR_small.dcm"))
    scan = read_scan(shipped(name))
    assert np.array_equal(scan.pixels, reference.pixels) and scan.spacing == reference.spacing
    assert scan.orientation == Orientation("L", "P", "Image Orientation (Patient)")


def test_a_ct_slice_keeps_its_hounsfield_units_spacing_and_orientation():
    import pydicom

    scan = read_scan(shipped("CT_small.dcm"))
    ds = pydicom.dcmread(shipped("CT_small.dcm"))
    assert "WindowCenter" not in ds  # no window: the modality values, in Hounsfield units, are kept
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert scan.pixels.dtype == np.float32 and np.allclose(scan.pixels, expected)
    assert scan.spacing == pytest.approx((0.661468, 0.661468)) and scan.orientation.rows == "L"


def test_colour_and_multi_frame_files_read_as_rgb():
    assert read_scan(shipped("SC_rgb_jpeg_dcmtk.dcm")).pixels.shape == (100, 100, 3)
    frames = read_scan(shipped("SC_rgb_rle_2frame.dcm"))
    assert frames.rgb and frames.planes == 2 and frames.plane(1).pixels.shape == (100, 100, 3)


def test_a_truncated_file_from_another_tool_is_one_clear_line():
    with pytest.raises(UnreadableImageError, match="truncated") as err:
        read_scan(shipped("MR_truncated.dcm"))
    assert "\n" not in str(err.value) and "MR_truncated.dcm" in str(err.value)
