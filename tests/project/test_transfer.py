"""Mask import and export: the shipped QaTa sample, PNG and TIFF, stacks, all-or-nothing imports, and real
QaTa and DSB2018 data when it is available."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_amvlm.project import Project, Status

from ._helpers import SAMPLE_QATA, SHARED_DATA, binary


def test_sample_qata_import_export_identical(project: Project, tmp_path: Path) -> None:
    project.add_images(SAMPLE_QATA / "images")
    report = project.import_masks(SAMPLE_QATA / "masks", author="alice")
    assert len(report.imported) == 10 and not report.unmatched
    out = project.export_masks(tmp_path / "out", prefix="mask_")
    assert sorted(p.name for p in out) == sorted(p.name for p in (SAMPLE_QATA / "masks").iterdir())
    for path in out:
        original = skio.imread(SAMPLE_QATA / "masks" / path.name)
        exported = skio.imread(path)
        assert exported.dtype == original.dtype and np.array_equal(exported, original)
    with pytest.raises(ValueError, match="exists"):
        project.export_masks(tmp_path / "out", prefix="mask_")
    assert len(project.export_masks(tmp_path / "out", prefix="mask_", overwrite=True)) == 10


def test_export_predictions_png_and_tif(project: Project, model: str, tmp_path: Path) -> None:
    ids = project.add_images([np.zeros((10, 12), np.uint8), np.ones((10, 12), np.uint8)])
    pred = binary((10, 12), 0)
    project.write_prediction(ids[0], pred, model=model)
    [png] = project.export_masks(tmp_path / "png", kind="prediction")
    assert png.name == f"{project.image(ids[0]).name}.png"
    assert np.array_equal(skio.imread(png), pred * 255)  # binary predictions default to 0/255
    [tif] = project.export_masks(tmp_path / "tif", kind="prediction", fmt="tiff", foreground=1)
    assert tif.suffix == ".tif" and np.array_equal(tifffile.imread(tif), pred)
    assert project.export_masks(tmp_path / "none", kind="human") == []
    with pytest.raises(ValueError, match="format"):
        project.export_masks(tmp_path / "x", kind="prediction", fmt="jpg")


def test_stack_masks_import_and_export_per_slice(project: Project, tmp_path: Path) -> None:
    stack = np.random.default_rng(0).integers(0, 255, (3, 16, 16), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "vol.tif", stack, photometric="minisblack")
    ids = project.add_image(tmp_path / "vol.tif")
    labels = np.random.default_rng(1).integers(0, 4, (3, 16, 16), dtype=np.uint16)
    masks = tmp_path / "masks"
    masks.mkdir()
    tifffile.imwrite(masks / "vol_mask.tif", labels, photometric="minisblack")
    report = project.import_masks(masks, author="alice")
    assert list(report.imported) == ids
    out = project.export_masks(tmp_path / "out", fmt="tif")
    assert [p.name for p in out] == [f"vol_z{i:04d}.tif" for i in range(3)]
    assert all(np.array_equal(tifffile.imread(p), labels[i]) for i, p in enumerate(out))


def test_import_is_all_or_nothing(project: Project, tmp_path: Path) -> None:
    a = project.add_image(np.full((8, 8), 5, np.uint8), name="a")[0]
    b = project.add_image(np.full((8, 8), 6, np.uint8), name="b")[0]
    masks = tmp_path / "m"
    masks.mkdir()
    skio.imsave(masks / "mask_a.png", np.full((8, 8), 255, np.uint8), check_contrast=False)
    skio.imsave(masks / "mask_b.png", np.zeros((9, 9), np.uint8), check_contrast=False)  # wrong shape
    skio.imsave(masks / "mask_zzz.png", np.zeros((8, 8), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="mask_b.png"):
        project.import_masks(masks, author="alice")
    assert project.status(a) is Status.UNLABELED and project.status(b) is Status.UNLABELED
    (masks / "mask_b.png").unlink()
    report = project.import_masks(masks, author="alice")
    assert list(report.imported) == [a] and [p.name for p in report.unmatched] == ["mask_zzz.png"]


QATA_TRAIN = SHARED_DATA / "qata_cov19" / "train"


@pytest.mark.skipif(not QATA_TRAIN.is_dir(), reason=f"real QaTa data not found at {QATA_TRAIN}")
def test_real_qata_image_and_mask_round_trip(project: Project, tmp_path: Path) -> None:
    import csv

    with open(QATA_TRAIN / "text.csv", newline="") as f:  # the first image whose mask shows infection
        row = next(r for r in csv.DictReader(f) if skio.imread(QATA_TRAIN / r["mask"]).any())
    image_file, mask_file = QATA_TRAIN / row["image"], QATA_TRAIN / row["mask"]
    [image_id] = project.add_image(image_file)
    project.add_prompt(image_id, row["text"], author="dataset")
    report = project.import_masks([mask_file], author="clinician")
    assert list(report.imported) == [image_id]
    again = Project.open(project.root)
    assert np.array_equal(again.read_image(image_id)[...], skio.imread(image_file))
    assert again.image(image_id).file_sha256 == hashlib.sha256(image_file.read_bytes()).hexdigest()
    [out] = again.export_masks(tmp_path / "out", prefix="mask_")
    assert out.name == mask_file.name
    original, exported = skio.imread(mask_file), skio.imread(out)
    assert exported.dtype == original.dtype == np.uint8 and exported.shape == original.shape
    assert np.array_equal(exported, original) and set(np.unique(original)) <= {0, 255}
    from PIL import Image

    assert Image.open(out).mode == Image.open(mask_file).mode == "L"


DSB = SHARED_DATA / "dsb2018"


@pytest.mark.skipif(not DSB.is_dir(), reason=f"real DSB2018 data not found at {DSB}")
def test_real_16bit_image_with_instance_labels(project: Project, tmp_path: Path) -> None:
    [image_id] = project.add_image(DSB / "img2d.tif")
    original = tifffile.imread(DSB / "mask2d.tif")
    project.mark_corrected(image_id, original, author="annotator")
    rec = Project.open(project.root).image(image_id)
    assert rec.dtype == "uint16" and (rec.vmin, rec.vmax) == (0.0, float(tifffile.imread(DSB / "img2d.tif").max()))
    [out] = project.export_masks(tmp_path / "out", fmt="tif")
    assert out.name == "img2d.tif" and len(np.unique(original)) > 100
    assert np.array_equal(tifffile.imread(out), original) and tifffile.imread(out).dtype == np.uint16
