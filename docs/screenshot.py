"""Take the README screenshot: napari with the AMVLM widget, the QaTa sample, its prompt's mask, and (with
``--retrain``) a training round in progress.

Run under an X server, e.g. on a headless machine::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshot.py --out docs/screenshot.png

``--model DIR`` picks another model folder (default: the bundled models/amvlm-qata).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def wait(app, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Run the Qt event loop until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled one)")
    p.add_argument("--out", default="docs/screenshot.png", help="PNG to write")
    p.add_argument("--retrain", action="store_true", help="also show a Retrain round in progress")
    p.add_argument("--size", default="1500x900", help="window size WxH")
    args = p.parse_args(argv)

    from qtpy.QtWidgets import QApplication

    from napari_amvlm._widgets.launch import open_viewer

    viewer, widget = open_viewer("qata", args.model, show=True)
    app = QApplication.instance()
    width, height = (int(v) for v in args.size.split("x"))
    viewer.window.resize(width, height)
    wait(app, lambda: not widget.busy, 300, "the model to load")
    if widget.model is None:
        raise SystemExit(f"no model: {widget.ui.status.text()}")
    done: list[object] = []
    widget.segmented.connect(done.append)
    widget.segment()
    wait(app, lambda: bool(done), 300, "the segmentation")
    labels = done[-1]
    if args.retrain:
        viewer.layers.selection.active = labels
        widget.mark_corrected()
        widget.ui.epochs.setValue(1000)
        widget.retrain()
        wait(app, lambda: widget.runner.job is not None and widget.runner.job.last_step is not None, 600,
             "the first training step")
        try:  # show napari's activity panel with the round's progress bar (napari internals: optional)
            viewer.window._status_bar._toggle_activity_dock(True)
        except AttributeError:
            pass
    viewer.layers.selection.active = labels
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    print(f"{out}: {widget.ui.status.text()}")
    if args.retrain:
        widget.runner.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
