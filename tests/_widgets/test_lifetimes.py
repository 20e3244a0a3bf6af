"""The viewer never aborts: work still in flight when the viewer closes or the interpreter exits is cancelled
or finished (never left reading a closed store, never reporting to a deleted object), corrections are stored
in order, and unexpected errors reach the status line and the log."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_amvlm.project import Project

from ._helpers import TIMEOUT_MS, human_labels, mark, segment

pytestmark = pytest.mark.gui
HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("how", ["exit", "close"])
def test_ending_with_work_in_flight_neither_aborts_nor_loses_labels(tiny_seg_dir, tmp_path, how):
    """A script ends (or closes its viewer) while a segmentation of a 40-slice stack runs and right after a
    correction of every slice was marked. (Before the fix the process aborted: the thread-pool worker went on
    reading the project after zarr's executor had shut down, then reported to a deleted signals object.)"""
    project = tmp_path / "project"
    proc = subprocess.run([sys.executable, str(HERE / "_busy_exit.py"), str(tiny_seg_dir), str(project), how],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "has been deleted" not in proc.stderr and "cannot schedule new futures" not in proc.stderr
    n = int(proc.stdout.split()[-1])
    p = Project.open(project)
    corrected = p.image_ids("corrected")
    assert len(corrected) == n  # every correction was stored, whole
    want = np.zeros((64, 64), bool)
    want[10:30, 20:40] = True
    for image_id in corrected:
        assert np.array_equal(np.asarray(p.read_mask(image_id, "human")[...]) != 0, want)


def test_closing_the_viewer_cancels_segment_and_score_and_keeps_corrections(docked, qtbot):
    viewer, w = docked
    stack = (np.random.default_rng(3).random((30, 48, 48)) * 255).astype(np.uint8)
    image = viewer.add_image(stack, name="stack")
    w.ui.stack.setCurrentText("all slices")
    labels = segment(qtbot, w, "lower left lung", image)
    labels.data[...] = 0
    labels.data[:, 5:25, 5:25] = 1
    project = w.project
    for k in range(8):  # unscored images for 'next most uncertain'
        project.add_image(np.full((40, 40), k, np.uint8), name=f"extra{k}")
    results: list = []
    w.segmented.connect(results.append)
    w.marked.connect(results.append)
    viewer.layers.selection.active = labels
    w.ui.mark.click()  # queued: stored before what follows
    w.ui.next_uncertain.click()  # scoring 8 images
    w.segment(image, "upper right lung")  # refused while scoring ("still working"), or queued
    viewer.layers.selection.active = labels
    w.ui.mark.click()  # a second correction, queued behind the scoring
    jobs = w.jobs
    viewer.close()
    qtbot.waitUntil(lambda: jobs.closed, timeout=TIMEOUT_MS)  # the close was seen (on the next turn)
    assert jobs.idle and jobs.stop.is_set()  # nothing runs any more: the scoring was cancelled
    qtbot.wait(100)
    assert results == []  # no callback into the closed widget
    reopened = Project.open(project.root)
    assert len(reopened.image_ids("corrected")) == 30  # both corrections stored, whole
    labels_now = human_labels(reopened)
    assert all(np.asarray(reopened.read_mask(i, "human")[...])[5:25, 5:25].all() for i in labels_now)


def test_a_correction_marked_before_retrain_is_in_that_round(docked, qtbot):
    viewer, w = docked
    viewer.open_sample("napari-amvlm", "qata_chest_xray")
    image = viewer.layers[-1]
    first = segment(qtbot, w)
    first.data[100:150, 30:90] = 1
    viewer.layers.selection.active = first
    (a,) = mark(qtbot, w)
    flipped = viewer.add_image(np.ascontiguousarray(image.data[:, ::-1]), name="flipped")
    second = segment(qtbot, w, "lower left lung", flipped)
    second.data[120:160, 40:80] = 1
    viewer.layers.selection.active = second
    w.ui.epochs.setValue(10_000)
    with qtbot.waitSignal(w.runner.launched, timeout=TIMEOUT_MS) as blocker:
        w.ui.mark.click()  # stored on the worker thread...
        w.ui.retrain.click()  # ...before this round's export reads the project
        assert "already running" not in w.ui.status.text() and w.runner.busy
    job = blocker.args[0]
    (b,) = second.metadata["amvlm"]["image_ids"]
    assert a != b and sorted(job.training_set.labeled + job.heldback) == sorted([a, b]) and len(job.heldback) == 1
    w.cancel_retrain()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=TIMEOUT_MS)


def test_unexpected_errors_reach_the_status_line_and_the_log(docked, qtbot, monkeypatch, caplog):
    from napari_amvlm._widgets import _main, _work

    viewer, w = docked
    viewer.open_sample("napari-amvlm", "qata_chest_xray")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a plane")

    monkeypatch.setattr(_work, "predict_planes", broken)
    with caplog.at_level(logging.WARNING, logger="napari_amvlm"):
        w.segment()
        qtbot.waitUntil(lambda: not w.busy, timeout=TIMEOUT_MS)
    status = w.ui.status.text()
    assert status.startswith("Segmentation failed: unexpected ZeroDivisionError: division by zero in a plane")
    assert "details are in the log" in status and "Traceback" in caplog.text and "in broken" in caplog.text
    monkeypatch.undo()

    caplog.clear()
    w.say("")
    monkeypatch.setattr(_main, "show_result", lambda *a: {}["no such layer"])  # the GUI-side callback fails
    with caplog.at_level(logging.WARNING, logger="napari_amvlm"):
        w.segment()
        qtbot.waitUntil(lambda: "failed" in w.ui.status.text(), timeout=TIMEOUT_MS)
    assert w.ui.status.text().startswith("Segmentation failed: unexpected KeyError: 'no such layer'")
    assert "Traceback" in caplog.text and not w.busy
