"""How responsive the napari widget stays: prompt latency (cold / cached image embedding) and the largest
event-loop gap (the heartbeat) while segmenting, during a Retrain round (separate process) and after Cancel, and
in series mode on a project of real X-rays: open the project, segment the image shown, accept its mask, step to
the next image, save the project elsewhere. Goal: no gap over 100 ms on the GUI thread.

Run under an X server (a QTimer ticks every 10 ms; the gap is the longest time between two ticks)::

    xvfb-run -a .venv/bin/python benchmarks/gui_responsiveness.py                # the bundled model
    xvfb-run -a .venv/bin/python benchmarks/gui_responsiveness.py --tiny         # a tiny random model

Prints a table and writes JSON (``--json``). Figures depend on the machine: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Probe:
    """Largest gap between ticks of a 10 ms QTimer."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.timer, self.last, self.gap = QTimer(), None, 0.0
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gap = max(self.gap, now - self.last) if self.last else self.gap
        self.last = now

    def measure(self, app, start, done, timeout: float) -> tuple[float, float]:
        """Run ``start()``, spin the event loop until ``done()``; returns (wall s, largest gap s)."""
        self.gap = 0.0
        self.timer.start()
        t0 = self.last = time.perf_counter()  # (the GUI thread blocked inside start() counts as a gap too)
        start()
        while True:  # (the events the action posted, its repaint included, belong to it: handled at least once)
            app.processEvents()
            if done():
                break
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"timed out after {timeout} s")
            time.sleep(0.002)
        self.timer.stop()
        return time.perf_counter() - t0, self.gap


def tiny_model(folder: Path) -> Path:
    import torch

    from napari_amvlm.config import (
        AMVLMConfig,
        HeadConfig,
        SegmenterConfig,
        TextConfig,
        TextMaskConfig,
        UNetConfig,
        VisionConfig,
    )
    from napari_amvlm.model.amvlm import AMVLM
    from napari_amvlm.model.hub import save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    torch.manual_seed(0)
    cfg = AMVLMConfig(vision=VisionConfig(image_size=32, patch_size=8, width=32, depth=1, heads=2),
                      text=TextConfig(trainable_layers=1, max_length=24),
                      head=HeadConfig(embed_dim=16, hidden_dim=32, pdt_heads=2))
    seg = SegmenterConfig(unet=UNetConfig(base=4, levels=3), textmask=TextMaskConfig(hidden=8, upsample=4))
    return save_segmenter(TextGuidedSegmenter(AMVLM(cfg).eval(), seg), folder)


def series_project(folder: Path, n: int) -> tuple[Path, str]:
    """A saved project of ``n`` real X-rays (not measured); returns it and where the images came from."""
    from _common import qata_items

    from napari_amvlm.project import Project

    items, source = qata_items("valid", n)
    project = Project.create(folder, name="series benchmark")
    project.add_images([str(it.image) for it in items])
    return folder, source


def series_rows(app, probe: Probe, w, tmp: Path, n: int) -> list[tuple[str, float, float]]:
    """The heartbeat rows of series mode (each action started from the GUI thread as a click would)."""
    folder, source = series_project(tmp / "series", n)
    rows = []
    shown = lambda before: lambda: w.current not in (None, before) and not w.busy
    rows.append((f"open project ({n} images; makes the layers)", *probe.measure(app, lambda: w.open_project(folder),
                                                               shown(None), 600)))
    done: list = []
    w.segmented.connect(done.append)
    rows.append(("segment (series image)", *probe.measure(app, w.segment, lambda: bool(done) and not w.busy, 600)))
    marked: list = []
    w.marked.connect(marked.append)
    rows.append(("Accept as is", *probe.measure(app, w.mark_corrected, lambda: bool(marked), 600)))
    steps = [probe.measure(app, w.next_image, shown(w.current), 600) for _ in range(5)]
    rows.append(("next image (worst of 5)", max(s[0] for s in steps), max(s[1] for s in steps)))
    rows.append(("previous image", *probe.measure(app, w.previous_image, shown(w.current), 600)))
    rows.append((f"save project as ({n} images)", *probe.measure(app, lambda: w.save_project_as(tmp / "saved"),
                                                                  lambda: not w.saving and not w.busy, 600)))
    rows.append(("open the saved copy (layers exist)", *probe.measure(
        app, lambda: w.open_project(tmp / "saved"), shown(None), 600)))
    print(f"series project: {n} images of {source}")
    return rows


def napari_floor_rows(app, probe: Probe, viewer) -> list[tuple[str, float, float]]:
    """For reference, napari's own cost of what opening a project does first: adding one image layer and one
    labels layer of a 512 x 512 film to this viewer (no widget code; removed again)."""
    import numpy as np

    rows, made = [], []
    for kind, add in (("image", viewer.add_image), ("labels", viewer.add_labels)):
        def start(add=add) -> None:
            made.append(add(np.zeros((512, 512), np.uint8), name=f"reference {len(made)}"))

        wanted = len(made) + 1
        rows.append((f"reference: napari add_{kind} alone (512 x 512)",
                     *probe.measure(app, start, lambda w=wanted: len(made) >= w, 60)))
    for layer in made:
        viewer.layers.remove(layer)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled one)")
    p.add_argument("--tiny", action="store_true", help="use a tiny random model instead")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the measured Retrain round")
    p.add_argument("--images", type=int, default=200, help="images in the series project (QaTa valid; the 10 "
                                                            "sample X-rays when the shared data is absent)")
    p.add_argument("--no-retrain", action="store_true", help="skip the Retrain and Cancel rows (the prompt and "
                                                                  "series rows only)")
    p.add_argument("--json", default="benchmarks/results/gui_responsiveness.json")
    args = p.parse_args(argv)
    from qtpy.QtWidgets import QApplication

    from napari_amvlm._widgets.launch import open_viewer

    tmp = Path(tempfile.mkdtemp(prefix="amvlm-bench-"))
    tempfile.tempdir = str(tmp)  # the widget's unsaved project goes here
    model = str(tiny_model(tmp / "tiny")) if args.tiny else args.model
    viewer, w = open_viewer("qata", model, show=True)
    app, probe, rows = QApplication.instance(), Probe(), []
    rows.append(("load model", *probe.measure(app, lambda: None, lambda: not w.busy, 600)))
    if w.model is None:
        raise SystemExit(w.ui.status.text())
    done: list = []
    w.segmented.connect(done.append)
    rows.append(("prompt 1 (new image)", *probe.measure(app, w.segment, lambda: len(done) == 1, 600)))
    image = viewer.layers[0]
    viewer.layers.selection.active = image
    rows.append(("prompt 2 (cached image)", *probe.measure(app, lambda: w.segment(image, "lower right lung"),
                                                          lambda: len(done) == 2, 600)))
    stall_ms = float("nan")
    if not args.no_retrain:
        labels = done[0]
        labels.data[100:160, 40:100] = 1
        viewer.layers.selection.active = labels
        w.mark_corrected()
        w.ui.epochs.setValue(args.epochs)
        rounds: list = []
        w.round_finished.connect(rounds.append)
        rows.append(("Retrain: export + start the process", *probe.measure(
            app, w.retrain, lambda: w.runner.job is not None and w.runner.job.running, 600)))
        rows.append((f"Retrain: training process ({args.epochs} epochs)", *probe.measure(
            app, lambda: None, lambda: not w.runner.job.running, 3600)))
        stall_ms = 1000 * rows[-1][2]
        rows.append(("Retrain: validate + hot-swap + re-run prompt", *probe.measure(
            app, lambda: None, lambda: bool(rounds) and not w.busy and not w.runner.busy, 600)))
        w.ui.epochs.setValue(10_000)
        rows.append(("Retrain until first step", *probe.measure(
            app, w.retrain, lambda: w.runner.job is not None and w.runner.job.last_step is not None, 600)))
        rows.append(("Cancel until process gone", *probe.measure(app, w.cancel_retrain, lambda: not w.runner.busy,
                                                                 60)))
    rows += series_rows(app, probe, w, tmp, args.images)
    rows += napari_floor_rows(app, probe, viewer)
    viewer.close()
    print(f"model: {w.model.describe() if w.model else '-'}\n")
    print(f"{'action':46s} {'wall s':>8s} {'largest gap ms':>15s}")
    for name, wall, gap in rows:
        print(f"{name:46s} {wall:8.2f} {1000 * gap:15.0f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    stall = None if args.no_retrain else round(stall_ms, 1)
    out.write_text(json.dumps({"model": str(model or "bundled"), "ui_max_stall_ms": stall, "rows": [
        {"action": n, "wall_s": round(a, 3), "largest_gap_ms": round(1000 * g, 1)} for n, a, g in rows]}, indent=2))
    print(f"\nui_max_stall_ms (largest gap while the training process runs): {stall_ms:.0f}\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
