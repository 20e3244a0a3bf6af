"""The widget explains itself, in the real viewer: the side convention the user picks (stated by the prompt box,
recorded in the project), notices about what the model ignored of a prompt, clear errors for images it cannot
segment, tooltips, napari's progress bar, plurals, and toasts only for problems (which close by themselves)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils import progress
from qtpy.QtWidgets import QWidget

from napari_amvlm._widgets import _main, _progress
from napari_amvlm.inference.prompts import VOCABULARY_NAME

from ._helpers import TIMEOUT_MS, segment

pytestmark = pytest.mark.gui


@pytest.fixture
def warnings(monkeypatch):
    """Every toast the widget raises."""
    seen: list[str] = []
    monkeypatch.setattr(_main, "show_warning", seen.append)
    return seen


def _xray(viewer):
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    return viewer.layers[-1]


def test_side_setting_is_stated_rewrites_the_prompt_and_is_recorded(docked, qtbot, warnings):
    viewer, w = docked
    image = _xray(viewer)
    sentence = image.metadata["amvlm_text"]  # "..., lower left lung." in the image's sides
    assert w.sides == "image" and "the image's left" in w.ui.prompt.placeholderText()
    as_image = segment(qtbot, w, "lower left lung", image)
    assert "1 image, 0 corrected, 0 rounds" in w.ui.project_info.text()

    w.ui.sides.setCurrentIndex(1)
    assert w.sides == "patient" and "the patient's left" in w.ui.prompt.placeholderText()
    assert "patient's left lung is on the image's right" in w.ui.sides.toolTip()
    assert w.ui.prompt.text() == sentence.replace("left", "right")  # the prefilled sentence keeps its meaning
    viewer.layers.selection.active = image
    as_patient = segment(qtbot, w, "lower right lung", image)
    prov = as_patient.metadata["amvlm"]
    assert prov["sides"] == "patient" and prov["model_prompt"] == "lower left lung" and prov["postprocess"]
    assert np.array_equal(as_patient.data, as_image.data)  # the same lung, named the radiologist's way

    (image_id,) = prov["image_ids"]
    record = w.project.mask_record(image_id, "prediction")
    assert record.provenance.prompt == "lower right lung" and record.provenance.sides == "patient"
    assert [(p.text, p.sides) for p in w.project.prompts(image_id)][-2:] == [
        ("lower left lung", "image"), ("lower right lung", "patient")]
    w.ui.sides.setCurrentIndex(0)
    w.go_to_image(image_id)  # a stored prompt comes back in the convention now chosen
    assert w.ui.prompt.text() == "lower left lung"
    assert warnings == []


@pytest.fixture
def known_words(docked, qtbot):
    """The docked widget with its model folder listing a training vocabulary."""
    viewer, w = docked
    (w.model.folder / VOCABULARY_NAME).write_text("lower\nleft\nright\nlung\ninfection\n")
    w.load_model(w.model.folder)
    qtbot.waitUntil(lambda: not w.busy and w.model.segmenter.vocabulary is not None, timeout=TIMEOUT_MS)
    return docked


def test_prompt_notices_name_the_ignored_words_and_still_segment(known_words, qtbot, warnings):
    viewer, w = known_words
    image = _xray(viewer)
    labels = segment(qtbot, w, "肺部感染 opacity in the lower left lung", image)
    status = w.ui.status.text()
    assert labels.metadata["amvlm"]["model_prompt"] == "lower left lung"
    assert "Notice: ignored words not in the Latin alphabet (the model reads English): '肺部感染'." in status
    assert "Notice: ignored words the model was not trained on: 'opacity', 'in', 'the'." in status

    long = "lower left lung, " * 2000
    viewer.layers.selection.active = image
    labels = segment(qtbot, w, long, image)
    status = w.ui.status.text()
    cut = w.model.segmenter.prepare(long).cut
    assert 5_900 < len(cut) < 6_000
    assert f"Notice: prompt cut at the model's 24-token limit; ignored {len(cut):,} words: 'lung', 'lower'" in status
    assert len(status) < 600 and labels.name == f"{image.name} mask"  # the prompt is elided in the status line
    assert labels.metadata["amvlm"]["prompt"] == long.strip()
    assert warnings == []  # notices, not problems: no toast

    viewer.layers.selection.active = image
    w.segment(image, "肺部感染")  # nothing readable: a problem
    qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
    assert "Segmentation failed: the model cannot read any word of the prompt (it ignores '肺部感染')" in \
        w.ui.status.text() and len(warnings) == 1


@pytest.mark.parametrize("data, message", [
    (np.zeros((1, 1), np.uint8), "the image is 1x1 pixels; the model needs at least 8x8"),
    (np.full((40, 40), np.nan, np.float32), "1,600 of 1,600 pixels are NaN or infinite"),
    (np.full((40, 40), 3, np.uint16), "the image is constant (every pixel is 3)"),
], ids=["1x1", "nan", "constant"])
def test_images_without_a_meaningful_answer_are_refused(docked, qtbot, warnings, data, message):
    viewer, w = docked
    image = viewer.add_image(data, name="odd")
    w.segment(image, "lower left lung")
    qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
    assert w.ui.status.text().startswith(f"Segmentation failed: {message}") and len(warnings) == 1
    assert [layer.name for layer in viewer.layers] == ["odd"] and not len(w.project)
    assert w.uncertainty == {}  # no score: "next most uncertain" cannot be misled


def test_a_stack_skips_its_blank_slices_with_a_notice(docked, qtbot, warnings):
    viewer, w = docked
    stack = (np.random.default_rng(0).random((3, 40, 36)) * 255).astype(np.uint8)
    stack[0] = 0
    image = viewer.add_image(stack, name="stack")
    w.ui.stack.setCurrentText("all slices")
    labels = segment(qtbot, w, "lower left lung", image)
    ids = labels.metadata["amvlm"]["image_ids"]
    assert ids[0] is None and ids[1] and ids[2] and len(w.project) == 2
    assert "'lower left lung': 2 planes," in w.ui.status.text()
    assert "Notice: skipped 1 of 3 slices: stack_z0000: the image is constant (every pixel is 0)" in \
        w.ui.status.text() and warnings == []


def test_every_control_has_a_tooltip_and_long_text_is_elided(docked, tiny_seg_dir):
    viewer, w = docked
    controls = {name: c for name, c in vars(w.ui).items() if isinstance(c, QWidget)}
    assert {"segment", "mark", "retrain", "epochs", "device", "stack", "sides", "cleanup", "prompt",
            "model_path"} <= set(controls)
    silent = [name for name, c in controls.items() if not c.toolTip() and name not in (
        "model_info", "project_info", "status", "progress", "fit_warning", "prompt_warning", "current")]
    # (labels and the bar: it gets a tooltip per round)
    assert silent == []
    assert str(tiny_seg_dir) in w.ui.model_path.toolTip() and w.ui.model_path.text() == str(tiny_seg_dir)
    w.ui.model_path.setFixedWidth(120)
    shown = w.ui.model_path.fontMetrics().elidedText(str(tiny_seg_dir), _middle(), 120)
    assert "…" in shown and str(tiny_seg_dir).endswith(shown.split("…")[-1])  # the folder's name stays visible
    w.ui.prompt.setText("lower left lung " * 50)
    assert "lower left lung lower left lung" in w.ui.prompt.toolTip()


def _middle():
    from qtpy.QtCore import Qt

    return Qt.TextElideMode.ElideMiddle


class _Recorded(progress):
    made: list[_Recorded] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.closed_at: int | None = None
        _Recorded.made.append(self)

    def close(self) -> None:
        self.closed_at = self.n
        super().close()


def test_napari_progress_during_model_load_and_a_multi_plane_segmentation(docked, qtbot, tiny_seg_dir,
                                                                         monkeypatch):
    viewer, w = docked
    _Recorded.made = []
    monkeypatch.setattr(_progress, "progress", _Recorded)
    w.load_model(tiny_seg_dir)
    qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
    (load,) = _Recorded.made
    assert load.desc.startswith("AMVLM: loading model") and load.total == 2 and load.closed_at == 2

    stack = (np.random.default_rng(1).random((4, 40, 36)) * 255).astype(np.uint8)
    image = viewer.add_image(stack, name="stack")
    w.ui.stack.setCurrentText("all slices")
    segment(qtbot, w, "lower left lung", image)
    planes = _Recorded.made[1]
    assert planes.desc == "AMVLM: segmentation" and planes.total == 4 and planes.closed_at == 4
    w.ui.stack.setCurrentText("current slice")
    viewer.layers.selection.active = image
    segment(qtbot, w, "lower left lung", image)
    assert len(_Recorded.made) == 2  # one plane: no bar
    assert "'lower left lung': 1 plane," in w.ui.status.text()
    assert "4 images, 0 corrected, 0 rounds" in w.ui.project_info.text()


def test_problem_toasts_close_by_themselves(make_napari_viewer, qtbot, tiny_seg_dir):
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    from napari_amvlm._widgets import AMVLMWidget

    viewer = make_napari_viewer(show=True)
    w = AMVLMWidget(viewer, model_dir=tiny_seg_dir)
    viewer.window.add_dock_widget(w, name="AMVLM")
    qtbot.waitUntil(lambda: w.model is not None and not w.busy, timeout=TIMEOUT_MS)
    canvas = viewer.window._qt_viewer.canvas.native

    def toasts():
        return [t for t in canvas.findChildren(NapariQtNotification) if t.isVisible()]

    image = viewer.add_image(np.full((40, 40), 5, np.uint8), name="blank")
    w.segment(image, "lower left lung")
    qtbot.waitUntil(lambda: len(toasts()) == 1, timeout=TIMEOUT_MS)
    assert "the image is constant" in toasts()[0].message.text()
    qtbot.waitUntil(lambda: not toasts(), timeout=60_000)  # after a few seconds, active window or not
