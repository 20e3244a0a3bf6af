"""The heartbeat benchmark (benchmarks/gui_responsiveness.py) counts the GUI thread blocked inside the action's
own start(), not only between the ticks that follow it."""

from __future__ import annotations

import importlib.util
import time

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.gui


def _probe():
    spec = importlib.util.spec_from_file_location("gui_responsiveness", ROOT / "benchmarks" / "gui_responsiveness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Probe()


def test_blocking_inside_start_counts(qapp):
    probe, ended = _probe(), []

    def start() -> None:  # an action that blocks the GUI thread for 0.3 s before it returns
        time.sleep(0.3)
        ended.append(time.perf_counter())

    _, gap = probe.measure(qapp, start, lambda: time.perf_counter() - ended[0] > 0.1, timeout=10)
    assert gap >= 0.3, gap
