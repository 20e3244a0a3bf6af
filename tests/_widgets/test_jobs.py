"""Short tasks on a worker thread: results and errors reach the GUI thread, and the worker is released after."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.gui


def test_worker_result_on_gui_thread_and_released(qtbot):
    from napari_amvlm._widgets import _jobs

    gui = threading.get_ident()
    got: list = []

    def work(x):
        got.append(("ran on", threading.get_ident()))
        return x * 2

    _jobs.run_in_thread(work, lambda r: got.append(("done", r, threading.get_ident())), got.append, 21)
    qtbot.waitUntil(lambda: any(g[0] == "done" for g in got), timeout=10_000)
    assert got[0][1] != gui  # the work ran on another thread
    assert ("done", 42, gui) in got  # the callback on the GUI thread
    qtbot.waitUntil(lambda: not _jobs._LIVE, timeout=5_000)  # our reference is dropped after "finished"


def test_worker_error_reaches_callback(qtbot):
    from napari_amvlm._widgets import _jobs

    errors: list = []

    def boom():
        raise ValueError("bad input")

    _jobs.run_in_thread(boom, lambda r: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert isinstance(errors[0], ValueError) and "bad input" in str(errors[0])
    qtbot.waitUntil(lambda: not _jobs._LIVE, timeout=5_000)
