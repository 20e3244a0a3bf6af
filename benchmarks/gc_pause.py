"""How long Python's full garbage collection holds a viewer with the AMVLM widget, without and with the freeze the
widget applies after a model load (``napari_amvlm/_widgets/_gc.py``). Run under ``xvfb-run -a`` without a display.

Prints a table: objects frozen, objects a full collection walks, and the median time of a full collection
(``gc.collect()``, which blocks the GUI thread exactly like an automatic one) in three states: nothing frozen;
frozen after the model load; frozen, then a second segmenter loaded and a prediction made (what a finished
retraining round adds).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
from pathlib import Path

from _common import print_table, shipped_model_dir, timed, write_json


def full_collection_ms(n: int = 5) -> float:
    return round(1000 * statistics.median(timed(gc.collect, n)), 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped one)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise SystemExit("no X server: run under `xvfb-run -a`")
    import numpy as np
    from qtpy.QtWidgets import QApplication
    from ui_round import spin

    from napari_amvlm._widgets import _gc
    from napari_amvlm._widgets.launch import open_viewer
    from napari_amvlm.model.hub import load_segmenter

    model = args.model or shipped_model_dir()
    viewer, w = open_viewer("qata", str(model), show=True)
    spin(QApplication.instance(), lambda: w.model is not None and not w.busy, 600)
    rows = []
    _gc.release()
    rows.append(("nothing frozen", gc.get_freeze_count(), len(gc.get_objects()), full_collection_ms()))
    _gc.settle(viewer.layers)
    rows.append(("frozen after the model load", gc.get_freeze_count(), len(gc.get_objects()), full_collection_ms()))
    seg = load_segmenter(model, "cpu")  # what RetrainJob.finalize loads at the end of a round
    w.model.segmenter.predict(np.random.default_rng(0).integers(0, 255, (224, 224), np.uint8), "lower left lung")
    rows.append(("frozen, plus one round's new model", gc.get_freeze_count(), len(gc.get_objects()),
                 full_collection_ms()))
    del seg
    viewer.close()
    print_table(rows, ("state", "frozen objects", "objects a full collection walks", "full collection ms (median)"))
    if args.json:
        write_json(args.json, {"rows": [dict(zip(("state", "frozen", "walked", "full_ms"), r)) for r in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
