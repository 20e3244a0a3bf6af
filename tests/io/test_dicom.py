"""DICOM in: files made from the real pixels of the shipped chest X-rays, as radiography systems write them
(MONOCHROME1 and 2, 12-bit with a rescale slope and a window, a VOI LUT, several frames, a mirrored film, a CT
series); the mask of each equals the mask of the same pixels given as PNG, and "left lung" in the patient's
convention lands on the side the file's orientation says. Damaged files give one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.inference import Segmenter
from napari_amvlm.io import UnreadableImageError, read_image, read_scan
from napari_amvlm.io.image import Orientation

from ..conftest import ROOT, SAMPLE_DATA
from ._fixtures import dataset, film, series

XRAYS = sorted((SAMPLE_DATA / "qata" / "images").glob("*.png"))
PROMPT = "unilateral pulmonary infection, one infected area, lower left lung."  # the patient's left


@pytest.fixture(scope="module")
def qata():
    return Segmenter.from_folder(ROOT / "models" / "amvlm-qata")


@pytest.fixture(scope="module")
def png() -> np.ndarray:
    return read_image(XRAYS[0])


def _voi_lut(bits: int) -> dict:
    """A VOI LUT from 12-bit stored values to ``bits``-bit display values: stored v -> (v // 16) at that depth."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4096, 0, bits])
    item.add_new("LUTData", "US", [(v // 16) * (257 if bits == 16 else 1) for v in range(4096)])
    return {"VOILUTSequence": [item]}


CASES = {  # name: (stored pixels from the PNG's, photometric, bits stored, tags)
    "monochrome2": (lambda p: p, "MONOCHROME2", 8, {}),
    "monochrome1": (lambda p: 255 - p, "MONOCHROME1", 8, {}),
    "12-bit, rescale slope, window": (lambda p: p.astype(np.uint16) * 16, "MONOCHROME2", 12,
                                      {"RescaleSlope": 0.0625, "RescaleIntercept": 0, "WindowCenter": 128,
                                       "WindowWidth": 256}),
    "12-bit, VOI LUT of 16-bit entries": (lambda p: p.astype(np.uint16) * 16, "MONOCHROME2", 12, 16),
    "12-bit, VOI LUT of 8-bit entries": (lambda p: p.astype(np.uint16) * 16, "MONOCHROME2", 12, 8),
    "12-bit MONOCHROME1, window": (lambda p: (255 - p).astype(np.uint16) * 16, "MONOCHROME1", 12,
                                   {"WindowCenter": 2048, "WindowWidth": 4096}),
}


@pytest.mark.parametrize("case", CASES)
def test_films_read_as_the_radiologist_sees_them_and_segment_as_the_png(case, png, qata, tmp_path):
    make, photometric, bits, tags = CASES[case]
    tags = _voi_lut(tags) if isinstance(tags, int) else tags
    scan = read_scan(film(tmp_path / "film.dcm", make(png), photometric, bits, **tags))
    image = scan.plane()
    assert scan.kind == "dicom" and image.spacing == (0.2, 0.2)
    assert image.orientation == Orientation("L", "F", "Patient Orientation")
    if case == "12-bit MONOCHROME1, window":  # a 12-bit window cannot give back 8-bit values exactly
        assert np.abs(image.pixels.astype(int) - png).max() <= 1
        return
    assert image.pixels.dtype == np.uint8 and np.array_equal(image.pixels, png)
    from_dicom, from_png = qata.predict(image, PROMPT, sides="image"), qata.predict(png, PROMPT, sides="image")
    assert np.array_equal(from_dicom.mask, from_png.mask) and from_dicom.mask.any()


def test_a_multi_frame_file_is_a_stack(qata, tmp_path):
    frames = np.stack([read_image(p) for p in XRAYS[:3]])
    scan = read_scan(film(tmp_path / "frames.dcm", frames))
    assert scan.planes == 3 and scan.pixels.shape == frames.shape and np.array_equal(scan.pixels, frames)
    for k in range(3):
        assert np.array_equal(qata.predict(scan.plane(k), PROMPT).mask, qata.predict(frames[k], PROMPT).mask)


def _sides(text_prob: np.ndarray) -> tuple[float, float]:
    half = text_prob.shape[1] // 2
    return float(text_prob[:, :half].sum()), float(text_prob[:, half:].sum())


def test_the_patient_s_left_lung_lands_where_the_film_s_orientation_says(png, qata, tmp_path):
    standard = read_scan(film(tmp_path / "standard.dcm", png, orientation=("L", "F"))).plane()
    mirrored = read_scan(film(tmp_path / "mirrored.dcm", png[:, ::-1], orientation=("R", "F"))).plane()
    a = qata.predict(standard, PROMPT, sides="patient")
    b = qata.predict(mirrored, PROMPT, sides="patient")
    left, right = _sides(a.text_prob)
    assert right > 2 * left  # the patient's left lung: the image's right on a standard film
    left, right = _sides(b.text_prob)
    assert left > 2 * right  # and the image's left on the mirrored film
    assert np.array_equal(b.mask, a.mask[:, ::-1])  # the mirrored film is segmented as the standard one
    assert "Patient Orientation R\\F" in b.sides_note or "Patient Orientation" in b.sides_note
    # read in the image's convention, the same words name the image's left side on both films
    assert _sides(qata.predict(mirrored, PROMPT, sides="image").text_prob)[0] > \
        _sides(qata.predict(mirrored, PROMPT, sides="image").text_prob)[1]


def test_a_series_folder_is_sorted_along_its_slices(tmp_path):
    planes = [read_image(p).astype(np.int16) * 4 for p in XRAYS[:4]]
    folder = series(tmp_path / "ct", planes, spacing=2.5, order=[2, 0, 3, 1])
    (folder / "notes.txt").write_text("not a DICOM file")
    scan = read_scan(folder)
    assert scan.planes == 4 and scan.spacing == (2.5, 0.7, 0.7)
    assert scan.orientation == Orientation("L", "P", "Image Orientation (Patient)")
    window = [np.rint(np.clip((p - 1024 - (40 - 0.5 - 399 / 2)) / 399, 0, 1) * 255) for p in planes]
    for k in range(4):  # in position order whatever the file names and instance numbers
        assert np.abs(scan.pixels[k].astype(int) - window[k]).max() <= 1


def test_a_folder_with_two_series_is_refused(tmp_path):
    planes = [read_image(p) for p in XRAYS[:2]]
    series(tmp_path / "mixed", planes[:1])
    series(tmp_path / "other", planes[1:])
    (tmp_path / "other" / "slice-001.dcm").rename(tmp_path / "mixed" / "other.dcm")
    with pytest.raises(UnreadableImageError, match="holds 2 DICOM series"):
        read_scan(tmp_path / "mixed")


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_truncated_file_is_one_clear_line(png, tmp_path):
    path = film(tmp_path / "cut.dcm", png)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - png.size // 2])
    with pytest.raises(UnreadableImageError) as err:
        read_scan(path)
    assert "cut.dcm" in _one_line(err.value) and "truncated" in str(err.value)


def test_a_file_without_pixel_data_is_one_clear_line(png, tmp_path):
    ds = dataset(png)
    del ds.PixelData
    ds.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(UnreadableImageError) as err:
        read_scan(tmp_path / "report.dcm")
    assert "no image" in _one_line(err.value)


def test_a_compression_no_decoder_reads_names_the_syntax(png, tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    ds = dataset(png)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "video.dcm", enforce_file_format=True)
    with pytest.raises(UnreadableImageError) as err:
        read_scan(tmp_path / "video.dcm")
    assert "MPEG2 Main Profile / Main Level" in _one_line(err.value) and MPEG2MPML in str(err.value)


def test_compressed_files_a_decoder_reads_open(png, tmp_path):
    ds = dataset(png)
    ds.compress("1.2.840.10008.1.2.5")  # RLE Lossless (pydicom's own encoder)
    ds.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    assert np.array_equal(read_scan(tmp_path / "rle.dcm").plane().pixels, png)
