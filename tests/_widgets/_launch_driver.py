"""A napari startup script that checks, inside a viewer started by a user's command, that the AMVLM widget works.

napari runs the script named in its ``application.startup_script`` setting right after making the viewer (the
tests point ``NAPARI_CONFIG`` at a settings file that names this one); ``amvlm-napari`` runs it too. The script
waits on the event loop until the docked widget has loaded its model, clicks **Segment** on the image the
command opened, then opens the QaTa sample from napari's sample menu and segments that, and writes what it saw
to the JSON file ``$AMVLM_LAUNCH_OUT`` before quitting. It never docks the widget itself: the command must.
"""

from __future__ import annotations

import json
import os
import time
import traceback

import numpy as np
from napari.layers import Image
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

TIMEOUT_S = 600.0
IDLE_S = 10.0  # a click of Segment that starts no work within this long did nothing
OUT = os.environ["AMVLM_LAUNCH_OUT"]
DOCK = os.environ.get("AMVLM_LAUNCH_DOCK", "")  # "plugins-menu": dock it from the Plugins menu (the user's click)


def _viewer():
    import napari

    return napari.current_viewer()


def _widget():
    from napari_amvlm._widgets import AMVLMWidget

    viewer = _viewer()
    if viewer is None:
        return None
    found = [w for w in viewer.window.dock_widgets.values() if isinstance(w, AMVLMWidget)]
    return found[0] if found else None


def _click_plugins_menu() -> None:
    """Trigger the Plugins menu's entry of the widget, as a user's click does."""
    for action in _viewer().window.plugins_menu.actions():
        menu = action.menu()
        for act in ([*menu.actions()] if menu else [action]):
            if act.text().replace("&", "").startswith("AMVLM segmentation"):
                act.trigger()
                return
    raise RuntimeError("no 'AMVLM segmentation' entry in the Plugins menu")


class Driver:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.step = self._wait_dock
        self.result: dict = {"segments": [], "errors": []}
        self.busy_since: float | None = None
        self.timer = QTimer(QApplication.instance())
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        try:
            if time.monotonic() - self.t0 > TIMEOUT_S:
                raise TimeoutError(f"timed out in {self.step.__name__}")
            self.step()
        except Exception as err:  # noqa: BLE001 - everything goes to the JSON file
            self.result["errors"].append("".join(traceback.format_exception(err)))
            self.finish()

    def _wait_dock(self) -> None:
        if _viewer() is None:
            return
        if DOCK == "plugins-menu" and _widget() is None and not self.result.get("clicked"):
            self.result["clicked"] = True
            _click_plugins_menu()
        w = _widget()
        if w is not None and w.model is not None and not w.busy:
            self.result["model"] = str(w.model.folder)
            self.step = self._segment_opened

    def _segment_opened(self) -> None:
        viewer, w = _viewer(), _widget()
        images = [layer for layer in viewer.layers if isinstance(layer, Image)]
        self.result["opened"] = [layer.name for layer in images]
        if images:
            viewer.layers.selection.active = images[0]
            w.ui.prompt.setText("lower left lung")
            self._click_segment(images[0].name, self._open_sample)
        else:
            self._open_sample()

    def _click_segment(self, image: str, then) -> None:
        w = _widget()
        done: list = []
        w.segmented.connect(done.append)
        w.ui.segment.click()
        clicked = time.monotonic()
        self.step = lambda: self._wait_segment(image, done, then, clicked)

    def _wait_segment(self, image: str, done: list, then, clicked: float) -> None:
        w = _widget()
        if not done:
            if not w.busy and time.monotonic() - clicked > IDLE_S:
                raise RuntimeError(f"Segment did nothing; the status line says {w.ui.status.text()!r}")
            return
        labels = done[0]
        data = np.asarray(labels.data)
        img = _viewer().layers[image]
        self.result["segments"].append({
            "image": image, "labels": labels.name, "labels_shape": list(data.shape),
            "foreground": float((data != 0).mean()), "visible": bool(labels.visible),
            "in_viewer": labels in _viewer().layers, "image_shape": list(img.data.shape[:2]),
            "status": w.ui.status.text(),
        })  # fmt: skip
        then()

    def _open_sample(self) -> None:
        viewer, w = _viewer(), _widget()
        viewer.open_sample("napari-amvlm", "qata_chest_xray")  # as File > Open Sample does
        sample = viewer.layers[-1]
        self.result["sample_prompt"] = w.ui.prompt.text()
        self.step = lambda: self._after_sample(sample.name)

    def _after_sample(self, name: str) -> None:
        w = _widget()
        if w.busy:
            return
        _viewer().layers.selection.active = _viewer().layers[name]
        self._click_segment(name, self.finish)

    def finish(self) -> None:
        self.timer.stop()
        w = _widget()
        self.result["status"] = w.ui.status.text() if w is not None else None
        with open(OUT, "w") as f:
            json.dump(self.result, f, indent=1)
        viewer = _viewer()
        if viewer is not None:
            viewer.close()
        QApplication.instance().quit()


_DRIVER = Driver()
