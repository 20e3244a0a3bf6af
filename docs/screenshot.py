"""Take the README's pictures in the real viewer: the widget with the QaTa sample and its mask (``screenshot.png``),
and the annotation loop in five steps (``loop-1.png`` ... ``loop-5.png``): add images, prompt, correct, next most
uncertain, Retrain.

Run under an X server, e.g. on a headless machine::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshot.py

``--model DIR`` picks another model folder (default: the bundled models/amvlm-qata); ``--out DIR`` where the PNGs
go (default: docs/). Every picture shows the bundled model by its name and the project as unsaved: no machine path.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_data" / "qata"
WIDTH = 1100  # pixels of a saved picture (the window is 1280x800, scaled down)


def wait(app, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the Qt event loop until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 1.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)


def save(viewer, app, path: Path) -> None:
    """The whole window, scaled to WIDTH pixels, in 256 colours (a fifth of the bytes, no visible difference)."""
    import numpy as np
    import skimage.transform
    from PIL import Image

    settle(app)
    shot = viewer.screenshot(canvas_only=False, flash=False)[..., :3]
    h, w = shot.shape[:2]
    small = skimage.transform.resize(shot, (round(h * WIDTH / w), WIDTH), anti_aliasing=True, preserve_range=True)
    Image.fromarray(small.astype(np.uint8)).quantize(256).save(path, optimize=True)
    print(f"{path}")


def sentences() -> dict[str, str]:
    with open(SAMPLES / "text.csv", newline="") as f:
        return {Path(r["image"]).stem: r["text"] for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled one)")
    p.add_argument("--out", default=str(REPO / "docs"), help="folder for the PNGs (default: docs/)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = tempfile.mkdtemp(prefix="amvlm-shots-")  # the unsaved project and the round go here
    settings = Path(tempfile.tempdir) / "napari-settings.yaml"  # napari's defaults, not this user's preferences
    settings.write_text("{}\n")
    os.environ["NAPARI_CONFIG"] = str(settings)

    from qtpy.QtWidgets import QApplication

    from napari_amvlm._widgets.launch import open_viewer

    viewer, w = open_viewer("qata", args.model, show=True)
    app = QApplication.instance()
    viewer.window.resize(1280, 800)
    wait(app, lambda: w.model is not None and not w.busy, 300, "the model to load")
    w.ui.author.setText("Dr. A. Reader")

    got: list = []
    w.segmented.connect(got.append)
    w.segment()  # the sample with its own sentence
    wait(app, lambda: bool(got) and not w.busy, 300, "the segmentation")
    viewer.layers.selection.active = got[-1]
    save(viewer, app, out / "screenshot.png")

    # 1. add a folder of images: the series shows the first one
    w.add_images([str(SAMPLES / "images")])
    wait(app, lambda: w.current is not None and not w.busy and "Added" in w.ui.status.text(), 300, "the images")
    save(viewer, app, out / "loop-1.png")

    # 2. describe what to segment
    text = sentences()
    name = w.project.image(w.current).name
    w.ui.prompt.setText(text.get(name, "lower left lung"))
    n = len(got)
    w.segment()
    wait(app, lambda: len(got) > n and not w.busy, 300, "the segmentation")
    save(viewer, app, out / "loop-2.png")

    # 3. correct with the brush and mark it
    labels = got[-1]
    labels.brush_size = 18
    labels.mode = "paint"
    for y in range(120, 170, 6):
        labels.paint((y, 150), 1)
    labels.mode = "pan_zoom"  # (no brush cursor in the picture)
    marked: list = []
    w.marked.connect(marked.append)
    settle(app, 0.5)
    w.mark_corrected()
    wait(app, lambda: bool(marked), 300, "the correction")
    save(viewer, app, out / "loop-3.png")

    # 4. the next most uncertain image, with its uncertainty
    w.ui.show_uncertainty.setChecked(True)
    w.next_most_uncertain()
    wait(app, lambda: "Most uncertain" in w.ui.status.text() and not w.busy, 600, "the scores")
    save(viewer, app, out / "loop-4.png")

    # 5. Retrain: a round in a separate process, its progress in the dock (it needs two corrected images: one is
    # held back to judge the new weights, so the proposal of the image just shown is accepted as is first)
    w.ui.show_uncertainty.setChecked(False)
    n = len(marked)
    w.mark_corrected()
    wait(app, lambda: len(marked) > n and not w.busy, 300, "the second correction")
    w.retrain()  # the default 20 epochs: the picture is taken at the first steps
    wait(app, lambda: w.runner.job is not None and w.runner.job.last_step is not None, 600, "the first step")
    settle(app, 3.0)
    save(viewer, app, out / "loop-5.png")
    w.runner.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
