"""Fixtures of the GUI tests: a tiny model folder and a docked AMVLM widget (needs an X server: xvfb-run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Skip (visibly) the GUI tests where no X server runs: napari needs one (see GUIDE §5, xvfb-run -a)."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        skip = pytest.mark.skip(reason="no X server (DISPLAY is unset): run under `xvfb-run -a`")
        for item in items:
            if HERE in Path(str(item.fspath)).resolve().parents:
                item.add_marker(skip)


@pytest.fixture
def docked(make_napari_viewer, qtbot, tiny_seg_dir, tmp_path, monkeypatch):
    """(viewer, widget): the AMVLM widget docked in a viewer, with the tiny model loaded. Unsaved projects
    go to the test's own temporary folder."""
    import tempfile

    from napari_amvlm._widgets import AMVLMWidget

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    viewer = make_napari_viewer()
    widget = AMVLMWidget(viewer, model_dir=tiny_seg_dir)
    viewer.window.add_dock_widget(widget, name="AMVLM")
    qtbot.waitUntil(lambda: widget.model is not None and not widget.busy, timeout=60_000)
    return viewer, widget
