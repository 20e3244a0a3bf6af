"""Every way the README starts the widget, started the way napari starts it: the ``napari`` command with ``-w``,
the Plugins menu, ``amvlm-napari``, and napari's plugin-docking API. In each, Segment on an opened image and on
File > Open Sample gives a mask layer over its image (before the fix, the first two docked a widget whose Segment
raised "the viewer of this widget was closed": it kept only a weak reference to a short-lived viewer proxy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ..conftest import SAMPLE_DATA
from ._helpers import TIMEOUT_MS

pytestmark = pytest.mark.gui
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
IMAGE = SAMPLE_DATA / "qata" / "images" / "covid_2804.png"


def _launch(tmp_path: Path, command: list[str], dock: str = "") -> dict:
    """Run ``command`` (a real viewer on the test's X server) with the launch driver as napari's startup script;
    return what the driver saw."""
    settings = tmp_path / "napari-settings.yaml"
    settings.write_text(f"application:\n  startup_script: {HERE / '_launch_driver.py'}\n")
    out = tmp_path / "launch.json"
    env = {**os.environ, "NAPARI_CONFIG": str(settings), "AMVLM_LAUNCH_OUT": str(out), "AMVLM_LAUNCH_DOCK": dock,
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.is_file(), f"the driver wrote nothing (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    result = json.loads(out.read_text())
    assert result["errors"] == [], result["errors"][0]
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    return result


def _check_masks(result: dict, opened: str) -> None:
    """Segment gave a mask over the opened image and over the sample, each shown in the viewer."""
    images = [s["image"] for s in result["segments"]]
    assert len(images) == 2 and images[0] == opened, images
    assert images[1].startswith("QaTa-COV19 covid_2804"), images  # the sample (napari adds " [1]" to a 2nd one)
    for seg in result["segments"]:
        assert seg["in_viewer"] and seg["visible"] and seg["labels_shape"] == seg["image_shape"], seg
        assert 0 < seg["foreground"] < 0.5, seg  # a real mask, not an empty or a full layer


def test_napari_command_with_w(tmp_path):
    """``napari image.png -w napari-amvlm``: the README's launch."""
    result = _launch(tmp_path, [str(BIN / "napari"), str(IMAGE), "-w", "napari-amvlm"])
    assert result["opened"] == ["covid_2804"]
    _check_masks(result, "covid_2804")


def test_plugins_menu(tmp_path):
    """``napari image.png``, then Plugins > AMVLM segmentation."""
    result = _launch(tmp_path, [str(BIN / "napari"), str(IMAGE)], dock="plugins-menu")
    assert result["clicked"]
    _check_masks(result, "covid_2804")


def test_amvlm_napari(tmp_path):
    """``amvlm-napari``: the widget docked and the sample opened, its sentence in the prompt box."""
    result = _launch(tmp_path, [str(BIN / "amvlm-napari")])
    assert result["opened"] == ["QaTa-COV19 covid_2804"]
    _check_masks(result, "QaTa-COV19 covid_2804")


def test_add_plugin_dock_widget(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """napari's plugin-docking API, which hands the widget a proxy of the viewer."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-amvlm")
    import gc

    gc.collect()  # the proxy napari made for the widget is gone by now
    qtbot.waitUntil(lambda: widget.model is not None and not widget.busy, timeout=TIMEOUT_MS)
    viewer.open_sample("napari-amvlm", "qata_chest_xray")  # File > Open Sample
    assert widget.ui.prompt.text()  # the sample's sentence, prefilled from the selection event
    with qtbot.waitSignal(widget.segmented, timeout=TIMEOUT_MS) as blocker:
        widget.ui.segment.click()
    labels = blocker.args[0]
    assert labels in viewer.layers and labels.data.shape == viewer.layers[0].data.shape
    assert 0 < np.mean(labels.data != 0) < 0.5
