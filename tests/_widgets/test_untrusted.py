"""The widget opens a project from anyone safely: a model it loads by itself is only one of the project's own
rounds, inside the project and within bounds; every crafted project or model is one clear line in the status bar
(never an unhandled exception), the model in use stays, and the human labels are intact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.project import Project

from .._untrusted import Decoys, edit_manifest, limited_memory
from ._helpers import TIMEOUT_MS, human_labels

pytestmark = pytest.mark.gui


def _project_with_round(root: Path, model_src: Path, name: str = "round-001", folder: Path | None = None) -> Project:
    """A project with one corrected image and one round whose model is ``model_src`` copied to ``folder``
    (default ``<root>/models/<name>``) and registered under ``name``."""
    p = Project.create(root)
    (image_id,) = p.add_image(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8), name="xray")
    p.mark_corrected(image_id, np.eye(40, dtype=np.uint8), author="alice")
    folder = folder or root / "models" / name
    shutil.copytree(model_src, folder)
    sha = p.add_model(folder / "segmenter.safetensors", name=name).sha256
    p.record_round(model=sha, settings={}, seed=0, metrics={})
    return p


def _open(qtbot, widget, folder: Path) -> str:
    with limited_memory():
        widget.open_project(folder)
        qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: not widget.ui.model_info.text().startswith("loading"), timeout=TIMEOUT_MS)
    text = widget.ui.status.text()
    assert "\n" not in text, text
    return text


def test_a_round_model_declaring_gigabytes_is_one_line_and_the_model_stays(docked, qtbot, tmp_path, tiny_seg_dir):
    _, w = docked
    before = w.model.sha
    p = _project_with_round(tmp_path / "p.amvlm", tiny_seg_dir)
    config = p.root / "models" / "round-001" / "config.json"
    data = json.loads(config.read_text())
    data["model"]["vision"]["depth"] = 1_000_000
    config.write_text(json.dumps(data))
    labels = human_labels(p)
    text = _open(qtbot, w, p.root)
    assert "VisionConfig.depth is 1000000; it must be from 1 to 48" in text, text
    assert w.model.sha == before and w.project.root == p.root
    assert human_labels(Project.open(p.root)) == labels


def test_a_model_outside_the_project_is_never_loaded_by_itself(docked, qtbot, tmp_path, tiny_seg_dir):
    _, w = docked
    outside = tmp_path / "outside"
    p = _project_with_round(tmp_path / "p.amvlm", tiny_seg_dir, name="../../outside", folder=outside)
    (p.root / "models").mkdir()  # (as in any project that had a round: the name then resolves to `outside`)
    decoys = Decoys(tmp_path / "decoys")
    text = _open(qtbot, w, p.root)
    assert text.startswith("Opened project") and w.model.folder == tiny_seg_dir, (text, w.model.folder)
    decoys.assert_untouched()


@pytest.mark.parametrize("craft", ["pickle codec", "wrong type", "arrays link", "huge declared shape"])
def test_crafted_projects_are_one_line_in_the_status_bar(docked, qtbot, tmp_path, tiny_seg_dir, craft):
    viewer, w = docked
    p = _project_with_round(tmp_path / "p.amvlm", tiny_seg_dir)
    human = p.mask_record(p.image_ids()[0], "human").array
    if craft == "pickle codec":
        zarray = p.root / "arrays" / human / ".zarray"
        zarray.write_text(json.dumps({**json.loads(zarray.read_text()), "compressor": {"id": "pickle"}}))
    elif craft == "wrong type":
        edit_manifest(p.root, lambda m: next(iter(m["images"].values())).update(masks="none"))
    elif craft == "arrays link":
        (p.root / "arrays").rename(tmp_path / "elsewhere")
        (p.root / "arrays").symlink_to(tmp_path / "elsewhere")
    else:  # the image array's metadata (the manifest still says 40 x 40): the array's own limit refuses it
        zarray = p.root / "arrays" / p.image(p.image_ids()[0]).array / ".zarray"
        zarray.write_text(json.dumps({**json.loads(zarray.read_text()), "shape": [100_000, 100_000]}))
    n_layers, model = len(viewer.layers), w.model.sha
    text = _open(qtbot, w, p.root)
    assert text.startswith("Cannot open the project:") and str(p.root) in text, text
    if craft == "huge declared shape":
        assert "its shape [100000, 100000] is larger than one image may be" in text, text
    assert len(viewer.layers) == n_layers and w.model.sha == model
    assert w.project is None or w.project.root != p.root
