"""Steps shared by the GUI tests."""

from __future__ import annotations

import numpy as np

TIMEOUT_MS = 120_000  # generous: the CI machine has 2 cores, often busy


def segment(qtbot, widget, prompt: str | None = None, image=None):
    """Run one prompt through the widget and return the Labels layer it produced."""
    with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as blocker:
        widget.segment(image, prompt)
    return blocker.args[0]


def mark(qtbot, widget) -> list[str]:
    """Click 'Mark corrected' and wait until the worker thread stored the human labels; returns their ids."""
    with qtbot.waitSignal(widget.marked, timeout=TIMEOUT_MS) as blocker:
        widget.ui.mark.click()
    return blocker.args[0]


def sample_segmented_and_corrected(viewer, widget, qtbot):
    """Open the QaTa sample, segment it with its own sentence, paint on the mask and mark it corrected; then the
    same for its mirror image (a Retrain round needs two corrected images: it holds one back to judge its weights).
    Returns the sample's image and Labels layers."""
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    image = viewer.layers[-1]
    labels = correct(viewer, widget, qtbot)
    mirror = viewer.add_image(np.ascontiguousarray(image.data[:, ::-1]), name="mirror")
    viewer.layers.selection.active = mirror
    correct(viewer, widget, qtbot, "lower right lung")
    return image, labels


def correct(viewer, widget, qtbot, prompt: str | None = None):
    """Segment the active image, paint on its mask with napari's brush and eraser, and mark it corrected."""
    labels = segment(qtbot, widget, prompt)
    labels.brush_size = 40
    labels.paint((150, 60), 1)  # napari's own brush: a disc of label 1
    labels.paint((40, 180), 0)  # and the eraser
    viewer.layers.selection.active = labels
    mark(qtbot, widget)
    assert "Marked 1 image as corrected" in widget.ui.status.text(), widget.ui.status.text()
    return labels


def human_labels(project) -> dict[str, bytes]:
    return {i: np.asarray(project.read_mask(i, "human")[...]).tobytes() for i in project.image_ids("corrected")}
