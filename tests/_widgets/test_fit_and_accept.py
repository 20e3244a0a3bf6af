"""The right model for the image (an H&E tile with the chest X-ray model, and the reverse, get a warning naming the
bundled model that fits, and its button loads it), prompts the model cannot follow are flagged by the prompt box,
honest acceptance (Accept as is / Mark corrected, and the edit effort in the project), and masks that take their
image's transform."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.io import read_image
from napari_amvlm.resources import models_dir

from ..conftest import SAMPLE_DATA
from ._helpers import TIMEOUT_MS, mark, segment

pytestmark = pytest.mark.gui
TILE = sorted((SAMPLE_DATA / "monuseg" / "img").glob("*.png"))[0]
XRAY = SAMPLE_DATA / "qata" / "images" / "covid_2804.png"


@pytest.fixture
def bundled(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """The widget with the bundled chest X-ray model (the real one: its trained_on.json)."""
    import tempfile

    from napari_amvlm._widgets import AMVLMWidget

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    viewer = make_napari_viewer()
    w = AMVLMWidget(viewer, model_dir=models_dir() / "amvlm-qata")
    viewer.window.add_dock_widget(w, name="AMVLM")
    qtbot.waitUntil(lambda: w.model is not None and not w.busy, timeout=TIMEOUT_MS)
    return viewer, w


def _loaded(qtbot, w, name):
    qtbot.waitUntil(lambda: not w.busy and w.model is not None and w.model.folder.name == name, timeout=TIMEOUT_MS)


def test_an_image_unlike_the_model_gets_a_warning_and_a_switch(bundled, qtbot):
    viewer, w = bundled
    ui = w.ui
    viewer.add_image(read_image(XRAY), name="film")
    assert ui.fit_warning.isHidden() and ui.switch_model.isHidden()
    viewer.add_image(read_image(TILE), name="tile", rgb=True)  # opened from disk: no sample metadata
    assert not ui.fit_warning.isHidden() and "it is a colour image" in ui.fit_warning.text()
    assert "amvlm-monuseg" in ui.fit_warning.text() and ui.switch_model.text() == "Use amvlm-monuseg"
    ui.switch_model.click()
    _loaded(qtbot, w, "amvlm-monuseg")
    assert ui.fit_warning.isHidden() and not ui.cleanup.isChecked()  # the histology model's own default

    viewer.layers.selection.active = viewer.layers["film"]  # the reverse: a gray film, the histology model
    assert "it is a gray image" in ui.fit_warning.text() and ui.switch_model.text() == "Use amvlm-qata"
    segment(qtbot, w, "nuclei", viewer.layers["film"])  # still segments, the warning stays
    assert not ui.fit_warning.isHidden()
    ui.switch_model.click()
    _loaded(qtbot, w, "amvlm-qata")
    assert ui.fit_warning.isHidden()


def test_the_warning_follows_the_image_of_the_series(bundled, qtbot, tmp_path):
    """Stepping through a series keeps the same mask layer selected: the warning is checked on each image."""
    import imageio.v3 as iio

    _, w = bundled
    film_rgb = tmp_path / "film_rgb.png"  # a film saved as RGB: shown in the same (RGB) layers as the tile
    iio.imwrite(film_rgb, np.repeat(read_image(XRAY)[..., None], 3, axis=-1))
    w.add_images([str(XRAY), str(TILE), str(film_rgb)])
    qtbot.waitUntil(lambda: w.current is not None and not w.busy, timeout=TIMEOUT_MS)
    film, tile, film_as_rgb = w.table.ids()
    warning = w.ui.fit_warning
    assert w.current == film and warning.isHidden()
    for step, shown, warned in ((1, tile, True), (-1, film, False), (1, tile, True), (1, film_as_rgb, False)):
        w.next_image(step)
        qtbot.waitUntil(lambda shown=shown: w.current == shown and not w.busy, timeout=TIMEOUT_MS)
        qtbot.wait(50)  # (the series mask comes on the next turn of the event loop)
        assert warning.isHidden() != warned, (w.project.image(shown).name, warning.text())
        assert not warned or "it is a colour image" in warning.text()


def test_prompts_the_model_cannot_follow_are_flagged_by_the_prompt_box(bundled, qtbot):
    _, w = bundled
    w.ui.prompt.setText("no infection")
    qtbot.waitUntil(lambda: not w.ui.prompt_warning.isHidden(), timeout=5000)
    assert w.ui.prompt_warning.text().startswith("The model cannot follow negation ('no')")
    w.ui.prompt.setText("opacity in the lower left lung")
    qtbot.waitUntil(lambda: "not trained on: 'opacity', 'in', 'the'" in w.ui.prompt_warning.text(), timeout=5000)
    w.ui.prompt.setText("lower left lung")
    qtbot.waitUntil(lambda: w.ui.prompt_warning.isHidden(), timeout=5000)


def test_accept_as_is_and_mark_corrected_record_the_edit_effort(docked, qtbot):
    viewer, w = docked
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    labels = segment(qtbot, w)
    assert w.ui.mark.text() == "Accept as is"
    (image_id,) = mark(qtbot, w)
    prov = w.project.mask_record(image_id, "human").provenance
    assert prov.changed == 0.0 and prov.edited is False and "Accepted 1 image as shown" in w.ui.status.text()
    assert prov.prompt == labels.metadata["amvlm"]["prompt"] and prov.model == w.model.sha

    before = labels.data.copy()
    labels.brush_size = 30
    labels.paint(tuple(np.argwhere(labels.data == 0)[0]), 1)  # the brush, where the mask was empty
    qtbot.waitUntil(lambda: w.ui.mark.text() == "Mark corrected", timeout=5000)
    mark(qtbot, w)
    prov = w.project.mask_record(image_id, "human").provenance
    assert prov.changed == pytest.approx(np.mean((before != 0) != (labels.data != 0))) and prov.changed > 0
    assert "Marked 1 image as corrected (1 edited; you changed" in w.ui.status.text()
    assert w.ui.mark.text() == "Accept as is"  # what is stored now is what it shows


def test_masks_take_and_follow_their_image_transform(docked, qtbot):
    viewer, w = docked
    image = viewer.add_image(read_image(XRAY), name="film", scale=(0.5, 0.7), translate=(10.0, -4.0))
    image.rotate = 30
    w.ui.show_uncertainty.setChecked(True)
    labels = segment(qtbot, w, "lower left lung", image)
    unc = viewer.layers["film uncertainty"]
    for layer in (labels, unc):
        assert np.allclose(layer.scale, image.scale) and np.allclose(layer.translate, image.translate)
        assert np.allclose(layer.rotate, image.rotate) and np.allclose(layer.affine.affine_matrix,
                                                                       image.affine.affine_matrix)
    image.scale = (2.0, 2.0)
    image.translate = (0.0, 3.0)
    image.affine = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])

    def over_the_image(when):
        for layer in (labels, unc):
            assert np.allclose(layer.scale, (2.0, 2.0)) and np.allclose(layer.translate, (0.0, 3.0)), (when, layer)
            assert np.allclose(layer.affine.affine_matrix, image.affine.affine_matrix), (when, layer)

    over_the_image("as the image changed")  # at once, before any re-segmentation
    segment(qtbot, w, "lower right lung", image)
    over_the_image("after a re-run")
    world = image.data_to_world((100, 50))
    assert np.allclose(labels.world_to_data(world), (100, 50))
