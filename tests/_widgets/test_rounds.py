"""Cancel and a killed training process: the viewer keeps the last good weights and every human label."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ._helpers import TIMEOUT_MS, human_labels, sample_segmented_and_corrected, segment

pytestmark = pytest.mark.gui


def _start_long_round(viewer, w, qtbot, corrected=False):
    if not corrected:
        sample_segmented_and_corrected(viewer, w, qtbot)
    w.ui.epochs.setValue(10_000)
    w.ui.retrain.click()
    job = w.runner.job
    qtbot.waitUntil(lambda: job.last_step is not None, timeout=2 * TIMEOUT_MS)  # really training
    return job


def test_cancel_stops_the_round_within_seconds(docked, qtbot):
    viewer, w = docked
    sha = w.model.sha
    sample_segmented_and_corrected(viewer, w, qtbot)
    w.ui.retrain.click()
    w.ui.cancel.click()  # at once, while the project is exported (or just after the process started)
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=10_000)
    first = w.runner.job
    assert "cancelled" in w.ui.status.text() and (first.pid is None or first._proc.poll() is not None)

    job = _start_long_round(viewer, w, qtbot, corrected=True)
    assert job is not first
    labels_before = human_labels(w.project)
    t0 = time.perf_counter()
    w.ui.cancel.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=10_000)
    stop_s = time.perf_counter() - t0
    print(f"\nCancel -> training process gone in {stop_s:.2f} s")
    assert stop_s < 5.0 and job._proc.poll() is not None
    assert "cancelled" in w.ui.status.text() and not w.ui.cancel.isEnabled()
    assert w.model.sha == sha and w.project.rounds() == [] and human_labels(w.project) == labels_before


def test_killed_training_process_keeps_weights_and_labels(docked, qtbot):
    viewer, w = docked
    sha = w.model.sha
    job = _start_long_round(viewer, w, qtbot)
    labels_before = human_labels(w.project)
    os.kill(job.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=10_000)
    assert "killed by signal 9" in w.ui.status.text() and "labels are kept" in w.ui.status.text()
    assert w.model.sha == sha and w.project.rounds() == [] and human_labels(w.project) == labels_before
    viewer.layers.selection.active = viewer.layers[0]
    assert segment(qtbot, w, "lower left lung").metadata["amvlm"]["model"] == sha  # still works
    w.ui.epochs.setValue(2)
    with qtbot.waitSignal(w.round_finished, timeout=4 * TIMEOUT_MS):  # and a new round can run
        w.ui.retrain.click()
    assert len(w.project.rounds()) == 1
