"""Series mode on the shipped sample X-rays: the images are stepped through one at a time (next, previous, most
uncertain, picked from the list), the canvas shows exactly the image being annotated (the visible image layer's
pixels are checked) with its own mask, an edited mask is kept as a draft, and the list is readable at 1280x800."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels

from ..conftest import SAMPLE_DATA
from ._helpers import TIMEOUT_MS, mark, segment

pytestmark = pytest.mark.gui
XRAYS = SAMPLE_DATA / "qata" / "images"


def _visible(viewer, kind):
    return [layer for layer in viewer.layers if isinstance(layer, kind) and layer.visible]


def _shows(viewer, w, image_id) -> Labels:
    """The canvas shows exactly the project image ``image_id`` and one mask of its shape; returns the mask."""
    (image,) = _visible(viewer, Image)
    pixels = np.asarray(w.project.read_image(image_id)[...])
    index = tuple(int(i) for i in viewer.dims.current_step[: image.ndim - 2])
    assert np.array_equal(np.asarray(image.data[index]), pixels), (image.name, w.project.image(image_id).name)
    (labels,) = _visible(viewer, Labels)
    assert labels.data.shape[-2:] == pixels.shape[:2] and labels.metadata["amvlm"]["image_layer"] == image.name
    assert w.current == image_id and w.project.image(image_id).name in w.ui.current.text()
    return labels


def _go(qtbot, w, action, *args):
    before = w.current
    action(*args)
    qtbot.waitUntil(lambda: not w.busy and (w.current != before or "image of the list" in w.ui.status.text()),
                    timeout=TIMEOUT_MS)


def test_series_steps_one_image_at_a_time_with_its_own_mask(docked, qtbot):
    viewer, w = docked
    w.add_images([str(XRAYS)])  # the widget's "Add folder…"
    qtbot.waitUntil(lambda: w.current is not None and not w.busy, timeout=TIMEOUT_MS)
    order = w.table.ids()
    assert len(order) == 10 and w.current == order[0] and "Added 10 images" in w.ui.status.text()
    first = _shows(viewer, w, order[0])
    assert not first.data.any() and w.ui.mark.text() == "Mark corrected"  # nothing predicted yet

    labels = segment(qtbot, w, "lower left lung")  # into the series mask of the image shown
    predicted = np.asarray(w.project.read_mask(order[0], "prediction")[...]) != 0
    assert labels is first and np.array_equal(labels.data != 0, predicted) and w.ui.mark.text() == "Accept as is"
    labels.data[100:150, 30:90] = 1  # a correction
    mark(qtbot, w)
    corrected = labels.data.copy()
    _go(qtbot, w, w.next_image)
    second = _shows(viewer, w, order[1])
    assert not second.data.any()  # image 2 has no mask yet: image 1's is not shown over it
    _go(qtbot, w, w.previous_image)
    assert np.array_equal(_shows(viewer, w, order[0]).data, corrected)  # its own mask, back from the project
    assert w.ui.images.item(w.ui.images.ids().index(order[0]), 1).text() == "corrected"

    _go(qtbot, w, w.go_to_image, order[7])  # picked from the list
    _shows(viewer, w, order[7])
    w.ui.images.activated.emit(order[3])  # a double-click on row 4
    qtbot.waitUntil(lambda: w.current == order[3] and not w.busy, timeout=TIMEOUT_MS)
    _shows(viewer, w, order[3])
    segment(qtbot, w, "lower right lung")
    row = w.ui.images.ids().index(order[3])
    assert w.ui.images.item(row, 1).text() == "predicted" and w.ui.images.item(row, 2).text()

    w.ui.next_uncertain.click()  # scores the 8 unscored images, then shows the most uncertain uncorrected one
    qtbot.waitUntil(lambda: "Most uncertain" in w.ui.status.text() and not w.busy, timeout=TIMEOUT_MS)
    best = max(order[1:], key=lambda i: w.uncertainty.get(i, -1))
    assert len(w.uncertainty) == 10
    proposal = _shows(viewer, w, best)  # with the model's proposal, stored by the scoring
    assert np.array_equal(proposal.data != 0, np.asarray(w.project.read_mask(best, "prediction")[...]) != 0)
    assert w.ui.mark.text() == "Accept as is"
    w.ui.images.sortItems(2)  # by uncertainty, lowest first: Next follows the list's order
    _go(qtbot, w, w.go_to_image, w.ui.images.ids()[0])
    _go(qtbot, w, w.next_image)
    assert w.current == w.ui.images.ids()[1]
    _shows(viewer, w, w.current)


def test_an_edited_mask_is_kept_as_a_draft_and_segment_asks_before_replacing_it(docked, qtbot):
    viewer, w = docked
    w.add_images([str(p) for p in sorted(XRAYS.glob("*.png"))[:3]])  # "Add images…"
    qtbot.waitUntil(lambda: w.current is not None and not w.busy, timeout=TIMEOUT_MS)
    a, b = w.table.ids()[:2]
    labels = segment(qtbot, w, "lower left lung")
    assert w.ui.mark.text() == "Accept as is"
    labels.paint(tuple(np.argwhere(labels.data == 0)[0]), 1)  # the brush, where the mask was empty
    qtbot.waitUntil(lambda: w.ui.mark.text() == "Mark corrected", timeout=5000)
    edited = labels.data.copy()
    w.segment(None, "lower right lung")  # would overwrite the edits: the first press says so...
    assert "You edited the mask" in w.ui.status.text() and np.array_equal(labels.data, edited)
    _go(qtbot, w, w.next_image)
    row = w.ui.images.ids().index(a)
    assert w.current == b and w.ui.images.item(row, 1).text() == "edited, not marked"
    _go(qtbot, w, w.previous_image)
    back = _shows(viewer, w, a)
    assert np.array_equal(back.data, edited) and w.ui.mark.text() == "Mark corrected"  # the draft is back
    mark(qtbot, w)
    assert w.project.status(a).value == "corrected" and a not in w.drafts
    assert w.project.mask_record(a, "human").provenance.changed > 0


def _shown_text(table, row, col) -> str:
    """The text the table's delegate draws in a cell: elided (the view's mode) to the cell's text rectangle."""
    from qtpy.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

    index = table.model().index(row, col)
    option = QStyleOptionViewItem()
    option.initFrom(table.viewport())
    option.rect = table.visualRect(index)
    QStyledItemDelegate(table).initStyleOption(option, index)  # (what the table's own delegate does; its
    option.textElideMode = table.textElideMode()                 # initStyleOption is not reachable from Python)
    style = table.style()
    rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, table)
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    return option.fontMetrics.elidedText(option.text, option.textElideMode, rect.width() - 2 * margin)


def _drawn_labels(w) -> list[str]:
    """The one-line texts the dock's visible labels draw in full (an eliding label draws its elided text)."""
    from qtpy.QtWidgets import QLabel

    out = []
    for label in w.findChildren(QLabel):
        drawn = QLabel.text(label)
        if label.isVisible() and not label.wordWrap() and \
                label.fontMetrics().horizontalAdvance(drawn) <= label.contentsRect().width():
            out.append(drawn)
    return out


def test_the_list_is_readable_in_a_1280x800_window(make_napari_viewer, qtbot, tiny_seg_dir, tmp_path, monkeypatch):
    import tempfile

    from napari_amvlm._widgets import AMVLMWidget

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 800)
    window = viewer.window._qt_window
    w = AMVLMWidget(viewer, model_dir=tiny_seg_dir)
    viewer.window.add_dock_widget(w, name="AMVLM")
    w.add_images([str(XRAYS)])
    qtbot.waitUntil(lambda: w.current is not None and not w.busy, timeout=TIMEOUT_MS)
    qtbot.wait(200)
    table = w.ui.images
    header = table.horizontalHeader()
    rows = table.viewport().height() // table.rowHeight(0)
    assert rows >= 8 and window.height() <= 800, (rows, window.size())  # (not by growing the window)
    for col, want in ((0, "covid_"), (1, "unlabeled")):
        assert header.sectionSize(col) >= table.fontMetrics().horizontalAdvance(want), col
    assert header.sectionViewportPosition(2) + header.sectionSize(2) <= table.viewport().width() + 1
    assert header.sectionSize(2) >= table.fontMetrics().horizontalAdvance("Uncertainty")
    shown = [_shown_text(table, row, 0) for row in range(table.rowCount())]
    assert len(set(shown)) == len(shown), shown  # elided, the names still tell the images apart

    last = table.ids()[-1]  # a long name: the current-image line shows its start, its position and whole status
    _go(qtbot, w, w.go_to_image, last)
    drawn = _drawn_labels(w)
    name = w.project.image(last).name
    assert any(text.startswith(name[: len("sub-s10327")]) for text in drawn), drawn
    assert any("10/10" in text and "unlabeled" in text for text in drawn), drawn

    long = ("This image does not look like the images this model was trained on (chest X-ray, gray, "
            "QaTa-COV19 training split): it is a colour image and brighter than its training images. Its "
            "masks may mean little. The bundled model amvlm-monuseg is made for images like this one.")
    w.say(long)  # three lines and more at this width: cut to two, the whole message in the tooltip
    qtbot.wait(200)
    rows = table.viewport().height() // table.rowHeight(0)
    assert rows >= 8 and window.height() <= 800, (rows, window.size())
    status = w.ui.status
    assert status.height() <= 2 * status.fontMetrics().lineSpacing() + 4, status.height()
    assert status.text() == long and long in status.toolTip()


def test_layers_the_user_opened_are_shown_alone(docked, qtbot):
    """Many X-rays open as separate layers: the most uncertain one is the only one the canvas shows."""
    from napari_amvlm.io import read_image

    viewer, w = docked
    layers = [viewer.add_image(read_image(p), name=p.stem) for p in sorted(XRAYS.glob("*.png"))[:4]]
    for layer in layers:
        viewer.layers.selection.active = layer
        segment(qtbot, w, "lower left lung", layer)
    w.ui.next_uncertain.click()
    qtbot.waitUntil(lambda: "Most uncertain" in w.ui.status.text() and not w.busy, timeout=TIMEOUT_MS)
    best = max(w.uncertainty, key=w.uncertainty.get)
    (shown,) = _visible(viewer, Image)
    assert shown.metadata["amvlm"]["image_ids"] == [best]
    (mask,) = _visible(viewer, Labels)
    assert mask.name == f"{shown.name} mask" and viewer.layers.selection.active is mask
