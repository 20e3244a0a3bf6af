"""The npe2 reader opens a project as image + labels layer data (called directly; no GUI needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm import _reader
from napari_amvlm._reader import napari_get_reader, read_project
from napari_amvlm.project import MANIFEST_NAME, Project, ProjectVersionError


@pytest.fixture
def project(tmp_path: Path) -> Project:
    from safetensors.numpy import save_file

    project = Project.create(tmp_path / "p.amvlm", name="demo")
    project.add_images([np.full((16, 20), 10 * i, np.uint8) for i in range(3)])
    project.add_image(np.full((8, 8, 3), 7, np.uint8), name="colour")
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "m.safetensors"))
    project.add_model(tmp_path / "m.safetensors")
    return project


def test_get_reader_only_for_projects(project: Project, tmp_path: Path) -> None:
    assert napari_get_reader(str(project.root)) is read_project
    assert napari_get_reader(str(project.root / MANIFEST_NAME)) is read_project
    assert napari_get_reader([str(project.root)]) is read_project
    (tmp_path / "x.png").write_bytes(b"")
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader(str(tmp_path / "x.png")) is None
    assert napari_get_reader([str(project.root), str(project.root)]) is None


def test_layers_show_human_labels_then_predictions(project: Project) -> None:
    ids = project.image_ids()
    model = project.models()[0].sha256
    human, pred = np.zeros((16, 20), np.uint8), np.zeros((16, 20), np.uint8)
    human[2:5, 3:9], pred[10:12, 1:4] = 1, 1
    project.write_prediction(ids[0], pred, model=model)
    project.mark_corrected(ids[0], human * 255, author="alice")  # human wins over the prediction
    project.write_prediction(ids[1], pred, model=model)
    layers = read_project(str(project.root))
    assert [t for *_, t in layers] == ["image", "labels", "image", "labels"]
    (image, image_kw, _), (labels, labels_kw, _) = layers[:2]
    assert image.shape == (3, 16, 20) and not isinstance(image, np.ndarray)  # lazy stack
    assert np.array_equal(np.asarray(image[2]), np.full((16, 20), 20))
    assert image_kw["rgb"] is False and image_kw["contrast_limits"] == [0.0, 20.0]
    assert labels.shape == (3, 16, 20) and isinstance(labels, np.ndarray)  # editable
    assert np.array_equal(labels[0], human) and np.array_equal(labels[1], pred) and not labels[2].any()
    meta = labels_kw["metadata"]["amvlm"]
    assert meta["image_ids"] == ids[:3] and meta["mask_kinds"] == ["human", "prediction", None]
    assert meta["project"] == str(project.root) and image_kw["metadata"] == labels_kw["metadata"]
    (rgb, rgb_kw, _), (rgb_labels, _, _) = layers[2:]
    assert rgb.shape == (8, 8, 3) and rgb_kw["rgb"] is True and rgb_labels.shape == (8, 8)
    assert "demo" in image_kw["name"] and labels_kw["name"].endswith("labels")


def test_large_labels_stay_lazy(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_reader, "EDITABLE_LABELS_BYTES", 0)
    _, (labels, _, _) = read_project(str(project.root))[:2]
    assert not isinstance(labels, np.ndarray) and labels.shape == (3, 16, 20)
    assert not np.asarray(labels).any()


def test_empty_project_and_bad_project(tmp_path: Path) -> None:
    empty = Project.create(tmp_path / "e")
    assert read_project(str(empty.root)) == [(None,)]
    manifest = empty.root / MANIFEST_NAME
    manifest.write_text(manifest.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(ProjectVersionError):
        read_project(str(empty.root))


def test_napari_opens_a_project_through_the_manifest(project: Project) -> None:
    """napari's own (Qt-free) viewer model finds the reader through the installed npe2 manifest."""
    components = pytest.importorskip("napari.components")
    import npe2

    npe2.PluginManager.instance().discover()  # what napari does at start-up
    viewer = components.ViewerModel()
    viewer.open(str(project.root / MANIFEST_NAME), plugin=None)  # only this plugin reads the manifest
    assert [type(layer).__name__ for layer in viewer.layers] == ["Image", "Labels", "Image", "Labels"]
    viewer.layers.clear()
    viewer.open(str(project.root), plugin="napari-amvlm")  # a folder: name the plugin (builtins also accept folders)
    assert len(viewer.layers) == 4 and viewer.layers[1].data.shape == (3, 16, 20)


def test_reader_imports_neither_qt_nor_napari() -> None:
    code = (
        "import sys, napari_amvlm._reader\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'napari')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
