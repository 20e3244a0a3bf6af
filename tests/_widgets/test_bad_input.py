"""Bad input the widget survives with a clear message (and the training process ends with the viewer)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ..conftest import BAD_IMAGES, BAD_REASONS, SAMPLE_DATA, make_bad_image
from ._helpers import TIMEOUT_MS, mark, segment

pytestmark = pytest.mark.gui


def test_no_image_empty_prompt_wrong_labels(docked, qtbot):
    viewer, w = docked
    w.ui.prompt.setText("lower left lung")
    w.ui.segment.click()
    assert "No image layer selected" in w.ui.status.text()
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    w.ui.prompt.setText("   ")
    w.ui.segment.click()
    assert "The prompt is empty" in w.ui.status.text()
    assert len(viewer.layers) == 1 and not w.busy

    wrong = viewer.add_labels(np.zeros((10, 12), np.uint8), name="hand-made")
    viewer.layers.selection.active = wrong
    w.ui.mark.click()
    assert "has shape (10, 12) but the image" in w.ui.status.text()
    viewer.layers.selection.active = viewer.layers[0]
    w.ui.mark.click()
    assert "not a Labels layer" in w.ui.status.text()
    assert w.project is None or not w.project.image_ids("corrected")


def test_folders_that_are_not_models_keep_the_current_one(docked, qtbot, tmp_path, tiny_amvlm_dir):
    viewer, w = docked
    sha = w.model.sha
    for folder, why in ((tmp_path / "empty", "config.json is missing"), (tmp_path / "missing", "not found"),
                        (tiny_amvlm_dir, "no segmenter")):
        folder.mkdir(exist_ok=True) if folder.name == "empty" else None
        w.load_model(folder)
        qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
        assert "is not a usable AMVLM model" in w.ui.status.text() and why in w.ui.status.text()
        assert "still using" in w.ui.model_info.text() and w.model.sha == sha
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    assert segment(qtbot, w).metadata["amvlm"]["model"] == sha  # the previous model still segments
    w.ui.device.setCurrentText("cpu")  # a device change reloads the model in use on that device
    qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
    assert w.model.sha == sha and w.model.device == "cpu" and "in use" in w.ui.model_info.text()


def test_retrain_without_corrections_twice_and_closing_the_viewer(docked, qtbot):
    viewer, w = docked
    w.ui.retrain.click()
    assert "No corrected image yet" in w.ui.status.text()
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    segment(qtbot, w)
    w.ui.retrain.click()
    assert "No corrected image yet" in w.ui.status.text() and not w.runner.busy

    image = viewer.layers[0]
    viewer.layers.selection.active = image
    labels = segment(qtbot, w, "lower left lung")
    labels.data[100:150, 30:90] = 1
    viewer.layers.selection.active = labels
    mark(qtbot, w)
    w.ui.retrain.click()  # one corrected image: nothing to judge new weights with
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=TIMEOUT_MS)
    assert "at least 2 corrected images" in w.ui.status.text() and w.runner.job.pid is None
    mirror = viewer.add_image(np.ascontiguousarray(image.data[:, ::-1]), name="mirror")
    viewer.layers.selection.active = mirror
    labels = segment(qtbot, w, "lower right lung")
    labels.data[100:150, 130:190] = 1
    viewer.layers.selection.active = labels
    w.ui.mark.click()
    w.ui.epochs.setValue(10_000)
    with qtbot.waitSignal(w.runner.launched, timeout=TIMEOUT_MS):
        w.ui.retrain.click()
        w.ui.retrain.click()  # twice while the project is being exported
        assert "already running" in w.ui.status.text()
    job = w.runner.job
    assert job.running and "separate process" in w.ui.status.text()
    w.ui.retrain.click()  # and again while it trains
    assert "already running" in w.ui.status.text() and w.runner.job is job  # no second process

    partial = job.out_dir
    viewer.close()
    qtbot.waitUntil(lambda: job._proc.poll() is not None, timeout=10_000)
    assert not job.running and not partial.exists()


class FileArray:
    """An image opened lazily from a file: slicing reads nothing, and reading a slice off the GUI thread reads the
    file again (the viewer itself keeps showing what it read first, on the GUI thread)."""

    def __init__(self, path) -> None:
        from skimage import io

        self.path, self.shown = path, io.imread(path)
        self.shape, self.dtype, self.ndim, self.size = (self.shown.shape, self.shown.dtype, self.shown.ndim,
                                                        self.shown.size)  # fmt: skip

    def __getitem__(self, key):
        return _Slice(self, key)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[...], dtype=dtype)

    def __len__(self) -> int:
        return self.shape[0]


class _Slice:
    def __init__(self, source: FileArray, key) -> None:
        self.source, self.key = source, key
        self.shape, self.dtype = source.shown[key].shape, source.dtype
        self.ndim, self.size = len(self.shape), source.shown[key].size

    def __array__(self, dtype=None, copy=None):
        import threading

        from skimage import io

        gui = threading.current_thread() is threading.main_thread()
        return np.asarray((self.source.shown if gui else io.imread(self.source.path))[self.key], dtype=dtype)


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_an_image_file_that_went_bad_is_one_clear_line(docked, qtbot, tmp_path, kind):
    """The file of a lazily opened image is truncated (or replaced by something that is not an image) after it
    was opened: 'Mark corrected' and a prompt each say, in one status line, which file and why; nothing is
    stored and no layer is made."""
    from napari.layers._source import layer_source

    viewer, w = docked
    path = tmp_path / "xray.png"
    shutil.copy(next((SAMPLE_DATA / "qata" / "images").glob("*.png")), path)
    with layer_source(path=str(path)):
        image = viewer.add_image(FileArray(path), name="xray")
    hand = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="hand",
                             metadata={"amvlm": {"image_layer": "xray"}})  # fmt: skip
    hand.data[50:100, 50:100] = 1
    make_bad_image(path, kind)
    n_layers = len(viewer.layers)

    viewer.layers.selection.active = hand
    w.ui.mark.click()
    qtbot.waitUntil(lambda: not w.marking, timeout=TIMEOUT_MS)
    status = w.ui.status.text()
    assert status.startswith(f"Saving the human labels failed: cannot read {path}: ") and \
        BAD_REASONS[kind] in status and "\n" not in status
    assert len(w.project) == 0

    w.segment(image, "lower left lung")
    qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
    status = w.ui.status.text()
    assert status.startswith(f"Segmentation failed: cannot read {path}: ") and BAD_REASONS[kind] in status
    assert len(w.project) == 0 and len(viewer.layers) == n_layers
