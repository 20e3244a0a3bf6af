"""Gray, RGB and 16-bit 2D images, stacks (current slice or all slices), and 'next most uncertain image'."""

from __future__ import annotations

import numpy as np
import pytest

from ._helpers import mark, segment

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("shape, dtype", [((64, 80), np.uint16), ((48, 40, 3), np.uint8), ((50, 60), np.float32)])
def test_2d_types(docked, qtbot, shape, dtype):
    viewer, w = docked
    rng = np.random.default_rng(0)
    data = (rng.random(shape) * (4000 if dtype == np.uint16 else 255)).astype(dtype)
    image = viewer.add_image(data, name="img", rgb=len(shape) == 3)
    labels = segment(qtbot, w, "lower left lung", image)
    assert labels.data.shape == shape[:2] and labels.metadata["amvlm"]["image_layer"] == "img"
    (image_id,) = labels.metadata["amvlm"]["image_ids"]
    rec = w.project.image(image_id)
    assert rec.shape == shape and rec.dtype == np.dtype(dtype).name and rec.rgb == (len(shape) == 3)
    assert w.project.status(image_id).value == "predicted"


def test_stack_current_slice_then_all_slices(docked, qtbot):
    viewer, w = docked
    stack = (np.random.default_rng(1).random((3, 40, 36)) * 255).astype(np.uint8)
    image = viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 1)
    assert w.ui.stack.currentText() == "current slice"
    w.ui.show_uncertainty.setChecked(True)
    labels = segment(qtbot, w, "lower left lung", image)
    ids = labels.metadata["amvlm"]["image_ids"]
    assert labels.data.shape == (3, 40, 36) and ids[0] is None and ids[1] and ids[2] is None
    unc = viewer.layers["stack uncertainty"].data
    assert unc[1].max() > 0 and unc[0].max() == 0 == unc[2].max()  # only the shown slice was segmented
    assert len(w.project) == 1 and w.project.image(ids[1]).slice is None and "_z0001" in w.project.image(ids[1]).name

    w.ui.stack.setCurrentText("all slices")
    viewer.layers.selection.active = image
    labels2 = segment(qtbot, w, "lower left lung", image)
    assert labels2 is labels and labels.name == "stack mask"  # the image's one mask, updated
    ids = labels.metadata["amvlm"]["image_ids"]
    assert all(ids) and len(set(ids)) == 3 and len(w.project) == 3 and unc.min() >= 0
    assert all(viewer.layers["stack uncertainty"].data[k].max() > 0 for k in range(3))

    labels.data[:, 5:20, 5:20] = 1
    viewer.layers.selection.active = labels
    assert mark(qtbot, w) == ids
    assert "Marked 3 images" in w.ui.status.text() and len(w.project.image_ids("corrected")) == 3
    for k, image_id in enumerate(ids):
        assert np.array_equal(np.asarray(w.project.read_mask(image_id, "human")[...]) != 0, labels.data[k] != 0)


def test_next_most_uncertain_image(docked, qtbot):
    viewer, w = docked
    rng = np.random.default_rng(2)
    stack = (rng.random((3, 40, 36)) * 255).astype(np.uint8)
    image = viewer.add_image(stack, name="stack")
    w.ui.stack.setCurrentText("all slices")
    labels = segment(qtbot, w, "lower left lung", image)
    ids = labels.metadata["amvlm"]["image_ids"]
    w.ui.stack.setCurrentText("current slice")
    viewer.dims.set_current_step(0, 0)
    viewer.layers.selection.active = labels
    mark(qtbot, w)  # slice 0 corrected
    extra = w.project.add_image((rng.random((30, 30)) * 255).astype(np.uint8), name="extra")[0]
    w.project.add_prompt(extra, "upper right lung", author="tester")
    assert extra not in w.uncertainty

    w.ui.next_uncertain.click()
    qtbot.waitUntil(lambda: extra in w.uncertainty and "Most uncertain" in w.ui.status.text(), timeout=60_000)
    todo = [ids[1], ids[2], extra]
    best = max(todo, key=lambda i: w.uncertainty[i])
    active = viewer.layers.selection.active
    shown = [layer for layer in viewer.layers if layer.visible]
    if best == extra:  # shown in the series layers, alone, with its mask selected
        assert [layer.name for layer in shown] == ["extra", "extra mask"] and active is shown[1]
        assert shown[0].metadata["amvlm"]["image_ids"] == [extra] and w.ui.prompt.text() == "upper right lung"
    else:  # the stack the user opened, at the slice of that image, alone with its mask
        assert shown == [image, labels] and active is labels and viewer.dims.current_step[0] == ids.index(best)
    table = w.ui.images
    rows = [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]
    assert len(rows) == 4 and sum(r[1] == "corrected" for r in rows) == 1 and all(r[2] for r in rows), rows
