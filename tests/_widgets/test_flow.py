"""The whole user flow in a real viewer with a tiny model: sample -> prompt -> mask -> correction -> Retrain
(separate process, progress, hot-swap, re-run) -> save and reopen the project."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_amvlm.project import Project

from ._helpers import TIMEOUT_MS, correct, mark
from ._probe import GapProbe

pytestmark = pytest.mark.gui


def test_sample_data_contributions(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    viewer.open_sample("napari-amvlm", "monuseg_tile")
    xray, tile = viewer.layers
    assert xray.data.shape == (224, 224) and not xray.rgb
    assert "lung" in xray.metadata["amvlm_text"] and xray.metadata["amvlm_sample"]["license"].startswith("CC BY-NC")
    assert tile.data.shape == (500, 500, 3) and tile.rgb and "nuclei" in tile.metadata["amvlm_text"]


def test_bundled_model_is_preselected(make_napari_viewer, qtbot):
    from napari_amvlm._widgets import AMVLMWidget
    from napari_amvlm.resources import default_model_dir

    viewer = make_napari_viewer()
    widget = AMVLMWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.model_folder == default_model_dir() and widget.ui.model_path.text() == "amvlm-qata (bundled)"
    assert widget.ui.model_path.toolTip() == str(default_model_dir())
    assert widget.ui.device.currentText() == "auto" and "cpu" in [widget.ui.device.itemText(i) for i in range(3)]
    qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
    # a trained bundled model loads offline; until it ships, the folder is refused with a clear message
    assert widget.model is not None or "not a usable AMVLM model" in widget.ui.status.text()


def test_whole_flow(docked, qtbot, tmp_path):
    viewer, w = docked
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    image = viewer.layers[-1]
    sentence = image.metadata["amvlm_text"]
    assert w.ui.prompt.text() == sentence  # the sample's sentence prefills the prompt

    with qtbot.waitSignal(w.segmented, timeout=TIMEOUT_MS) as blocker:  # Enter in the prompt box
        qtbot.keyClick(w.ui.prompt, Qt.Key.Key_Return)
    labels = blocker.args[0]
    prov = labels.metadata["amvlm"]
    assert labels.name == f"{image.name} mask" and labels.data.shape == image.data.shape
    assert labels.data.dtype == np.uint8
    assert prov["prompt"] == sentence and prov["model"] == w.model.sha and prov["image_layer"] == image.name
    assert prov["round"] is None and prov["device"] == "cpu" and len(prov["image_ids"]) == 1
    assert [layer.name for layer in viewer.layers] == [image.name, labels.name]  # no uncertainty until asked
    w.ui.show_uncertainty.setChecked(True)
    unc = viewer.layers[f"{image.name} uncertainty"]
    assert unc.visible and unc.data.shape == image.data.shape and 0 <= unc.data.min() <= unc.data.max() <= 1
    assert unc.data.max() > 0
    w.ui.show_uncertainty.setChecked(False)
    assert [layer.name for layer in viewer.layers] == [image.name, labels.name]
    image_id = prov["image_ids"][0]
    assert w.project.status(image_id).value == "predicted" and w.project.prompts(image_id)[-1].text == sentence

    misses = w.model.segmenter.cache_misses
    viewer.layers.selection.active = image
    w.ui.prompt.setText("lower right lung")
    with qtbot.waitSignal(w.segmented, timeout=TIMEOUT_MS) as blocker:
        w.ui.segment.click()
    right = blocker.args[0]
    assert right is labels and labels.metadata["amvlm"]["prompt"] == "lower right lung"  # the image's one mask
    assert w.model.segmenter.cache_misses == misses and "cached image embedding" in w.ui.status.text()

    labels.brush_size = 40
    labels.paint((150, 60), 1)
    labels.paint((40, 180), 0)
    viewer.layers.selection.active = labels
    assert mark(qtbot, w) == [image_id]
    human = np.asarray(w.project.read_mask(image_id, "human")[...])
    assert np.array_equal(human != 0, labels.data != 0) and (human != 0).sum() > 1000
    rec = w.project.mask_record(image_id, "human")
    assert rec.provenance.author_kind == "person" and rec.provenance.author == w.ui.author.text()
    name = w.project.image(image_id).name  # the image's name in the project
    assert w.ui.images.item(0, 0).text() == name and w.ui.images.item(0, 1).text() == "corrected"
    mirror = viewer.add_image(np.ascontiguousarray(image.data[:, ::-1]), name="mirror")
    viewer.layers.selection.active = mirror
    mirror_labels = correct(viewer, w, qtbot, "lower left lung")
    (mirror_id,) = mirror_labels.metadata["amvlm"]["image_ids"]
    viewer.layers.selection.active = image

    seen: list[str] = []
    w.runner.progressed.connect(lambda step, total, text: seen.append(w.ui.progress.format()))
    w.ui.epochs.setValue(3)
    old_sha = w.model.sha
    probe = GapProbe().start()
    with qtbot.waitSignal(w.round_finished, timeout=4 * TIMEOUT_MS) as blocker:
        w.ui.retrain.click()
        assert w.runner.busy and w.ui.cancel.isEnabled()
    gap = probe.stop()
    print(f"\nevent loop during a training round: largest gap {1000 * gap:.0f} ms over {probe.ticks} ticks")
    assert gap < 1.0 and probe.ticks > 50
    assert any("round 1: step 3/3, loss" in s for s in seen), seen
    assert not w.ui.progress.isEnabled()  # blank once the round ended
    result = blocker.args[0]
    (rnd,) = w.project.rounds()
    assert rnd.model == result.model_sha and sorted(rnd.images["labeled"] + rnd.images["heldback"]) == sorted(
        [image_id, mirror_id]) and rnd.installed == result.installed
    assert result.index == 1 and "held-back corrected image" in w.ui.status.text() and not w.ui.cancel.isEnabled()
    if result.installed:  # the guard judged the new weights at least as good: in use, the prompt re-run
        assert w.model.sha == result.model_sha != old_sha and w.model.round == 1
        assert "Round 1: its weights are in use" in w.ui.status.text()
        qtbot.waitUntil(lambda: any(layer.metadata.get("amvlm", {}).get("round") == 1 for layer in viewer.layers),
                        timeout=TIMEOUT_MS)  # the last prompt, re-run with the new weights
    else:  # worse on the held-back image: the weights in use stay, and the user is told
        assert w.model.sha == old_sha and "kept the previous weights" in w.ui.status.text()

    dest = tmp_path / "saved"
    w.save_project_as(dest)  # copied on the worker thread
    qtbot.waitUntil(lambda: w.project.root == dest and not w.saving, timeout=TIMEOUT_MS)
    in_use = dest / "models" / "round-001" if result.installed else w.model.folder
    assert w.model.folder == in_use
    reopened = Project.open(dest)
    assert sorted(reopened.image_ids("corrected")) == sorted([image_id, mirror_id]) and len(reopened.rounds()) == 1
    assert np.array_equal(np.asarray(reopened.read_mask(image_id, "human")[...]), human)

    w.model = None
    viewer.layers.clear()  # as in a new session
    w.open_project(dest)  # read on the worker thread; its image is shown with its mask
    qtbot.waitUntil(lambda: w.model is not None and not w.busy and len(viewer.layers) == 2, timeout=TIMEOUT_MS)
    assert w.model.folder == in_use and w.model.round == (1 if result.installed else None)
    shown = [layer for layer in viewer.layers if layer.visible]
    assert [layer.name for layer in shown] == [name, f"{name} mask"] and w.current == image_id
    assert np.array_equal(shown[1].data != 0, human != 0)  # the human label comes back with its image


def test_amvlm_napari_launcher(qtbot, tiny_seg_dir):
    """``amvlm-napari`` (the README's command) docks the widget and opens the X-ray with its sentence."""
    from napari_amvlm._widgets.launch import build_parser, open_viewer

    assert build_parser().parse_args([]).sample == "qata"
    viewer, widget = open_viewer("qata", model=str(tiny_seg_dir), show=False)
    try:
        qtbot.waitUntil(lambda: widget.model is not None, timeout=TIMEOUT_MS)
        assert len(viewer.layers) == 1 and widget.ui.prompt.text() == viewer.layers[0].metadata["amvlm_text"]
    finally:
        viewer.close()


def test_sample_images_bring_their_bundled_model(make_napari_viewer, qtbot, tiny_seg_dir, tmp_path, monkeypatch):
    """While a bundled model is in use, a MoNuSeg tile switches to the MoNuSeg model and an X-ray back to the QaTa
    one, each with its own clean-up default; a model the user chose stays. (Bundled models stood in for by copies of
    the tiny one.)"""
    import json
    import shutil

    from napari_amvlm._widgets import AMVLMWidget, _model, _work

    bundled = tmp_path / "models"
    for name in ("amvlm-qata", "amvlm-monuseg"):
        shutil.copytree(tiny_seg_dir, bundled / name)
    seg_json = bundled / "amvlm-monuseg" / "segmenter.json"  # trained with --no-cleanup, as the histology model
    cfg = json.loads(seg_json.read_text())
    cfg["segmenter"]["cleanup"] = False
    seg_json.write_text(json.dumps(cfg))
    for module in (_model, _work):
        monkeypatch.setattr(module, "models_dir", lambda: bundled)
    viewer = make_napari_viewer()
    widget = AMVLMWidget(viewer, model_dir=bundled / "amvlm-qata")
    viewer.window.add_dock_widget(widget)

    def in_use(folder):
        qtbot.waitUntil(lambda: not widget.busy and widget.model is not None and widget.model.folder == folder,
                        timeout=TIMEOUT_MS)

    in_use(bundled / "amvlm-qata")
    viewer.open_sample("napari-amvlm", "monuseg_tile")
    in_use(bundled / "amvlm-monuseg")
    assert "amvlm-monuseg" in widget.ui.status.text() and not widget.ui.cleanup.isChecked()  # the model's default
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    in_use(bundled / "amvlm-qata")
    assert widget.ui.cleanup.isChecked()

    widget.load_model(tiny_seg_dir)  # the user's own choice
    in_use(tiny_seg_dir)
    viewer.open_sample("napari-amvlm", "monuseg_tile")
    qtbot.wait(200)
    assert not widget.busy and widget.model.folder == tiny_seg_dir
