"""The project's records: adding images (arrays, files, folders, stacks) and reading them back, and model
registration."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_amvlm.project import Project, Status

from ._helpers import make_weights

IMAGE_CASES = {
    "gray8": (np.arange(48 * 40, dtype=np.uint8).reshape(48, 40), False, 1),
    "rgb8": (np.random.default_rng(1).integers(0, 255, (30, 20, 3), dtype=np.uint8), True, 1),
    "gray16": (np.random.default_rng(2).integers(0, 65535, (33, 17), dtype=np.uint16), False, 1),
    "float32": (np.random.default_rng(3).random((16, 16)).astype(np.float32), False, 1),
    "stack16": (np.random.default_rng(4).integers(0, 4000, (3, 20, 24), dtype=np.uint16), False, 3),
    "rgb_stack": (np.random.default_rng(5).integers(0, 255, (2, 10, 12, 3), dtype=np.uint8), True, 2),
}


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_add_array_round_trip(project: Project, case: str) -> None:
    data, rgb, n = IMAGE_CASES[case]
    ids = project.add_image(data, name=case)
    assert len(ids) == n
    again = Project.open(project.root)
    planes = [data] if n == 1 else list(data)
    for i, (image_id, plane) in enumerate(zip(ids, planes)):
        rec = again.image(image_id)
        assert rec.rgb is rgb and rec.shape == plane.shape and rec.dtype == plane.dtype.name
        assert rec.slice == (None if n == 1 else i) and rec.n_slices == n
        assert rec.name == (case if n == 1 else f"{case}_z{i:04d}")
        expected_hash = hashlib.sha256(f"{plane.dtype.str}|{plane.shape}|".encode() + plane.tobytes())
        assert rec.sha256 == expected_hash.hexdigest()
        stored = again.read_image(image_id)
        assert stored.dtype == plane.dtype and np.array_equal(stored[...], plane)
        assert (rec.vmin, rec.vmax) == (float(plane.min()), float(plane.max()))
        assert again.status(image_id) is Status.UNLABELED


def test_add_files_and_folder(project: Project, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    gray = np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)
    rgb = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    deep = np.random.default_rng(2).integers(0, 65535, (40, 50), dtype=np.uint16)
    stack = np.random.default_rng(3).integers(0, 65535, (4, 40, 50), dtype=np.uint16)
    skio.imsave(src / "a_gray.png", gray, check_contrast=False)
    skio.imsave(src / "b_rgb.png", rgb, check_contrast=False)
    tifffile.imwrite(src / "c_deep.tif", deep)
    tifffile.imwrite(src / "d_stack.tif", stack, photometric="minisblack")
    (src / "notes.txt").write_text("not an image")
    ids = project.add_images(src)
    assert len(ids) == 1 + 1 + 1 + 4
    recs = {project.image(i).name: project.image(i) for i in ids}
    assert set(recs) == {"a_gray", "b_rgb", "c_deep", *(f"d_stack_z{i:04d}" for i in range(4))}
    assert recs["b_rgb"].rgb and recs["c_deep"].dtype == "uint16"
    for name, arr in [("a_gray", gray), ("b_rgb", rgb), ("c_deep", deep), ("d_stack_z0002", stack[2])]:
        assert np.array_equal(project.read_image(recs[name].id)[...], arr)
    file = src / "d_stack.tif"
    assert recs["d_stack_z0002"].source == str(file.resolve())
    assert recs["d_stack_z0002"].file_sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    # adding the same files again adds nothing and returns the same ids (stable, content-addressed)
    assert project.add_images([src]) == ids and len(project) == 7
    assert Project.open(project.root).image_ids() == ids


def test_unreadable_file_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    with pytest.raises(ValueError, match="cannot read"):
        project.add_image(bad)
    with pytest.raises(FileNotFoundError):
        project.add_image(tmp_path / "missing.png")
    assert len(project) == 0


def test_same_name_different_pixels_gets_unique_name(project: Project) -> None:
    a = project.add_image(np.zeros((8, 8), np.uint8), name="x")[0]
    b = project.add_image(np.ones((8, 8), np.uint8), name="x")[0]
    assert a != b and project.image(a).name == "x" and project.image(b).name.startswith("x_")


def test_model_registration(project: Project, tmp_path: Path) -> None:
    weights = make_weights(tmp_path / "w" / "model.safetensors")
    rec = project.add_model(weights)
    assert rec.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest() and rec.size == weights.stat().st_size
    assert project.add_model(weights) == rec and len(project.models()) == 1  # idempotent
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a safetensors"):
        project.add_model(fake)
    with pytest.raises(FileNotFoundError):
        project.add_model(tmp_path / "none.safetensors")
