"""The widget's worker thread: tasks run in order off the GUI thread, results and errors come back on the GUI
thread, unexpected errors are reported (never raised into Qt), and closing cancels or waits for every task."""

from __future__ import annotations

import logging
import threading

import pytest

from napari_amvlm._cancel import Cancelled, check

pytestmark = pytest.mark.gui


def _jobs(reported: list):
    from napari_amvlm._widgets._jobs import Jobs

    return Jobs(lambda what, err: reported.append((what, err)))


def test_tasks_run_in_order_off_the_gui_thread_and_report_on_it(qtbot):
    gui, got, reported = threading.get_ident(), [], []
    jobs = _jobs(reported)

    def work(x):
        got.append(("ran", x, threading.get_ident()))
        return x * 2

    for x in range(5):
        assert jobs.submit(work, x, on_done=lambda r: got.append(("done", r, threading.get_ident())))
    qtbot.waitUntil(lambda: len(got) == 10, timeout=10_000)
    assert [g[1] for g in got if g[0] == "ran"] == [0, 1, 2, 3, 4]  # in submission order
    assert all(g[2] != gui for g in got if g[0] == "ran")  # on the worker thread
    assert [g[1:] for g in got if g[0] == "done"] == [(2 * x, gui) for x in range(5)]  # callbacks on the GUI's
    assert jobs.wait_idle(5) and jobs.idle and not reported
    assert jobs.shutdown(5) and jobs._thread is None  # the worker thread ends with its owner


def test_errors_reach_their_callback_or_the_report_never_qt(qtbot, caplog):
    from napari_amvlm._widgets._jobs import error_message

    errors, reported = [], []
    jobs = _jobs(reported)

    def boom():
        raise ValueError("bad input")

    def bug():
        raise KeyError("internal")

    jobs.submit(boom, on_done=lambda r: None, on_error=errors.append)
    jobs.submit(bug, on_done=lambda r: None, what="Scoring images")  # no handler: reported
    jobs.submit(int, on_done=lambda r: [][r], what="Segmentation")  # the GUI-side callback itself fails
    qtbot.waitUntil(lambda: len(reported) == 2, timeout=10_000)
    assert isinstance(errors[0], ValueError) and "bad input" in str(errors[0])
    (what1, err1), (what2, err2) = reported
    assert (what1, type(err1), what2, type(err2)) == ("Scoring images", KeyError, "Segmentation", IndexError)
    with caplog.at_level(logging.WARNING, logger="napari_amvlm"):
        text = error_message(what1, err1)
    assert text.startswith("Scoring images failed: unexpected KeyError: 'internal'") and "in the log" in text
    assert "Traceback" in caplog.text and "in bug" in caplog.text  # the details, in the log
    assert error_message("Segmentation", ValueError("no such file x.png")) == \
        "Segmentation failed: no such file x.png"
    assert error_message("Segmentation", Cancelled()) == "Segmentation cancelled."
    jobs.shutdown(5)


def test_shutdown_cancels_what_can_be_and_waits_for_the_rest(qtbot):
    reported, done, stored = [], [], []
    jobs = _jobs(reported)
    release = threading.Event()

    def long_scan(stop):
        release.wait(10)
        for k in range(1000):
            check(stop)  # between planes
            threading.Event().wait(0.001)
        done.append("scan finished")

    def store(x):
        stored.append(x)
        return x

    jobs.submit(long_scan, jobs.stop, on_done=done.append, on_error=done.append)
    jobs.submit(store, "correction", on_done=done.append, cancellable=False)
    jobs.submit(store, "queued scan", on_done=done.append)  # cancellable: never runs once closing
    release.set()
    assert jobs.shutdown(timeout=30)
    assert stored == ["correction"] and jobs.idle and jobs.closed
    assert not jobs.submit(store, "late", on_done=done.append)  # refused after shutdown
    qtbot.wait(50)
    assert done == [] and reported == []  # no callback of a closed owner runs
