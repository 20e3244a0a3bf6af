"""An unreadable input (a truncated PNG, a file that is not an image) at every command: one line naming the file
and the reason, a non-zero exit, and nothing half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from napari_amvlm.cli import main
from napari_amvlm.project import Project

from ..conftest import BAD_IMAGES, SAMPLE_DATA, assert_one_line_error, make_bad_image, qata_sample_copy

pytestmark = pytest.mark.parametrize("kind", BAD_IMAGES)


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def dataset_with_bad_image(tmp_path: Path, kind: str | None) -> tuple[Path, Path]:
    """Three rows of the QaTa sample whose second image is unreadable (``kind`` None: all fine); (folder, the
    second image)."""
    data = tmp_path / "data"
    rows = qata_sample_copy(data, 3)
    return data, make_bad_image(data / rows[1]["image"], kind) if kind else data / rows[1]["image"]


def test_segment(tiny_seg_dir, tmp_path, capsys, kind):
    bad = make_bad_image(tmp_path / "in" / "x.png", kind)
    out = tmp_path / "m.png"
    code, err = run(capsys, "segment", "--model", tiny_seg_dir, "--image", bad, "--text", "left lung", "--out", out,
                    "--uncertainty", tmp_path / "u.tif")  # fmt: skip
    assert_one_line_error(code, err, bad, kind)
    assert not out.exists() and not (tmp_path / "u.tif").exists()


def test_evaluate(tiny_seg_dir, tmp_path, capsys, kind):
    data, bad = dataset_with_bad_image(tmp_path, kind)
    per, summary = tmp_path / "per.csv", tmp_path / "summary.json"
    code, err = run(capsys, "evaluate", "--model", tiny_seg_dir, "--data", data, "--per-image", per, "--json", summary)
    assert_one_line_error(code, err, bad, kind)
    assert not per.exists() and not summary.exists()


def test_train(tiny_amvlm_dir, tmp_path, capsys, kind):
    data, bad = dataset_with_bad_image(tmp_path, kind)
    out = tmp_path / "trained"
    code, err = run(capsys, "train", "--data", data, "--model", tiny_amvlm_dir, "--out", out,
                    "--labeled-fraction", "0.5", "--max-steps", "1", "--device", "cpu")  # fmt: skip
    assert_one_line_error(code, err, bad, kind)
    assert not out.exists()


def test_train_bad_validation_image(tiny_amvlm_dir, tmp_path, capsys, kind):
    data, _ = dataset_with_bad_image(tmp_path / "train", None)  # the training set is fine...
    val, bad = dataset_with_bad_image(tmp_path / "val", kind)  # ...the validation set is not
    out = tmp_path / "trained"
    code, err = run(capsys, "train", "--data", data, "--val", val, "--model", tiny_amvlm_dir, "--out", out,
                    "--labeled-fraction", "0.5", "--max-steps", "1", "--device", "cpu")  # fmt: skip
    assert_one_line_error(code, err, bad, kind)
    assert not out.exists()


def test_pretrain(tmp_path, capsys, kind):
    data, bad = dataset_with_bad_image(tmp_path, kind)
    out = tmp_path / "pretrained"
    code, err = run(capsys, "pretrain", "--data", data, "--out", out, "--max-steps", "1", "--device", "cpu")
    assert_one_line_error(code, err, bad, kind)
    assert not out.exists()


def _arrays(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "arrays").iterdir())


def test_project_add(tmp_path, capsys, kind):
    project = Project.create(tmp_path / "p").root
    folder = tmp_path / "in"
    shutil.copytree(SAMPLE_DATA / "qata" / "images", folder)
    bad = make_bad_image(folder / "zz_last.png", kind)  # after every good file of the folder
    for given in (bad, folder):
        code, err = run(capsys, "project", "add", project, given)
        assert_one_line_error(code, err, bad, kind)
        assert len(Project.open(project)) == 0 and _arrays(project) == []  # not one image half-added


def test_project_import_masks(tmp_path, capsys, kind):
    project = Project.create(tmp_path / "p")
    project.add_images(SAMPLE_DATA / "qata" / "images")
    masks = tmp_path / "masks"
    shutil.copytree(SAMPLE_DATA / "qata" / "masks", masks)
    bad = make_bad_image(masks / "mask_zz_last.png", kind)
    before = _arrays(project.root)
    code, err = run(capsys, "project", "import-masks", project.root, masks, "--author", "alice")
    assert_one_line_error(code, err, bad, kind)
    reopened = Project.open(project.root)
    assert reopened.image_ids("corrected") == [] and _arrays(project.root) == before  # all or nothing
