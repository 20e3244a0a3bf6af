"""An image file from anyone is read within bounds: a TIFF that declares more pixels than one image may have is
refused from its header (as Pillow refuses a PNG bomb), and a TIFF of several series is refused instead of
silently adding its first page, with one clear line from the commands a user runs, in a memory-limited process
started from a folder that holds a ``napari_amvlm`` package that must never be imported."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_amvlm.project import Project

from .._untrusted import Decoys, assert_one_clear_line, run_amvlm, shadow_cwd, tree_digest


def _declaring(path, width: int, height: int):
    """A 16x16 TIFF (a few hundred bytes) whose header declares ``width`` x ``height`` pixels."""
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(width)
        tif.pages[0].tags["ImageLength"].overwrite(height)
    return path


def _series(path, n: int):
    """A TIFF of ``n`` one-page series."""
    with tifffile.TiffWriter(path) as w:
        for i in range(n):
            w.write(np.full((4, 4), i % 250, np.uint8), metadata={})
    return path


def _stack_declaring(path):
    """A 16-page TIFF stack whose pages each declare 12000x12000 pixels: each within the limit of one image, 2.1
    GiB in all, more than one file may decode into."""
    tifffile.imwrite(path, np.zeros((16, 16, 16), np.uint8), metadata=None)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page in tif.pages:
            page.tags["ImageWidth"].overwrite(12_000)
            page.tags["ImageLength"].overwrite(12_000)
    return path


def _stack(path, pages: int, side: int):
    tifffile.imwrite(path, np.arange(pages * side * side, dtype=np.uint16).reshape(pages, side, side))
    return path


CASES = {  # file, words of the error
    "60000x60000 TIFF": (lambda p: _declaring(p, 60_000, 60_000), "declares 60000x60000 pixels, more than"),
    "2.1 GiB stack": (lambda p: _stack_declaring(p), "2.1 GiB of pixels, more than the 2 GiB"),
    "10,000 series": (lambda p: _series(p, 10_000), "it has 10,000 pages, more than the 4,096"),
    "3 series": (lambda p: _series(p, 3), "it holds 3 image series"),
}


@pytest.fixture
def world(tmp_path):
    project = Project.create(tmp_path / "p.amvlm")
    project.add_image(np.ones((8, 8), np.uint8), name="first")
    cwd, marker = shadow_cwd(tmp_path)
    return {"project": project, "decoys": Decoys(tmp_path / "decoys"), "cwd": cwd, "marker": marker}


@pytest.mark.parametrize("case", CASES)
def test_project_add_refuses_from_the_header(world, tmp_path, case):
    make, words = CASES[case]
    image = make(tmp_path / "crafted.tif")
    before = tree_digest(world["project"].root)
    proc = run_amvlm("project", "add", world["project"].root, image, cwd=world["cwd"])
    assert_one_clear_line(proc, str(image), words)
    assert tree_digest(world["project"].root) == before and len(Project.open(world["project"].root)) == 1
    world["decoys"].assert_untouched()
    assert not world["marker"].exists()


def test_segment_refuses_a_declared_bomb(world, tmp_path, tiny_seg_dir):
    image = _declaring(tmp_path / "x.tif", 60_000, 60_000)
    proc = run_amvlm("segment", "--model", tiny_seg_dir, "--image", image, "--text", "left lung", "--out",
                     tmp_path / "m.png", cwd=world["cwd"])  # fmt: skip
    assert_one_clear_line(proc, str(image), "declares 60000x60000 pixels")
    assert not (tmp_path / "m.png").exists() and not world["marker"].exists()


def test_a_stack_within_the_limits_still_adds_one_image_per_page(world, tmp_path):
    image = _stack(tmp_path / "stack.tif", 5, 32)
    proc = run_amvlm("project", "add", world["project"].root, image, cwd=world["cwd"])
    assert proc.returncode == 0, proc.stderr
    assert len(Project.open(world["project"].root)) == 6


def test_a_png_bomb_is_refused_with_the_same_words(world, tmp_path):
    from PIL import Image

    image = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(image)  # 1-bit, ~50 KB compressed, 400 M pixels
    proc = run_amvlm("project", "add", world["project"].root, image, cwd=world["cwd"])
    assert_one_clear_line(proc, str(image), "pixels")
    assert not world["marker"].exists()
