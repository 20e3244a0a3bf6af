"""Child process of ``test_lifetimes``: a viewer whose widget still has work in flight when the script ends.

``python _busy_exit.py MODEL_DIR PROJECT_DIR close|exit``: segments a stack, marks every slice corrected (a
square on each), starts another segmentation of every slice and ends at once, either closing the viewer first
(``close``) or simply letting the interpreter exit (``exit``). Prints the number of slices.
"""

from __future__ import annotations

import sys
import time

import numpy as np

N_SLICES = 40


def main(model_dir: str, project_dir: str, how: str) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_amvlm._widgets import AMVLMWidget

    viewer = napari.Viewer(show=False)
    w = AMVLMWidget(viewer, model_dir=model_dir)
    viewer.window.add_dock_widget(w, name="AMVLM")
    app = QApplication.instance()

    def spin(done, timeout_s: float = 300.0) -> None:
        t0 = time.monotonic()
        while not done():
            app.processEvents()
            time.sleep(0.005)
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(w.ui.status.text())

    spin(lambda: w.model is not None and not w.busy)
    w.save_project_as(project_dir)
    stack = (np.random.default_rng(0).random((N_SLICES, 64, 64)) * 255).astype(np.uint8)
    image = viewer.add_image(stack, name="stack")
    w.ui.stack.setCurrentText("all slices")
    got: list = []
    w.segmented.connect(got.append)
    w.segment(image, "lower left lung")
    spin(lambda: bool(got))
    labels = got[0]
    labels.data[...] = 0
    labels.data[:, 10:30, 20:40] = 1
    viewer.layers.selection.active = labels
    w.ui.mark.click()
    spin(lambda: not w.busy)
    w.segment(image, "upper right lung")  # still running when the script ends
    print(N_SLICES, flush=True)
    if how == "close":
        viewer.close()
        app.processEvents()


if __name__ == "__main__":
    main(*sys.argv[1:4])
