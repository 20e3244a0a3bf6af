"""Retraining rounds as the plugin runs them, in a real napari viewer: round time, event-loop stalls, memory.

A project holds 32 real QaTa images labeled with their ground-truth masks (as if corrected by hand) and 200
unlabeled ones, each with its own sentence as its prompt. The script opens it in napari with the AMVLM widget,
runs one prompt, then presses Retrain with the widget's default settings and waits until the new weights are in
use and the prompt has been re-run with them. Per round it records:

- ``round_s``: Retrain pressed -> the new weights in use (export, training process, validation, hot-swap);
- ``ui_max_stall_ms``: the largest gap between ticks of a 10 ms QTimer on the GUI thread over the whole round
  (and per phase), i.e. the longest time the viewer could not react;
- ``peak_rss_mb``: peak resident memory of the viewer process + peak of the training process (each its own
  high-water mark, so the sum bounds their simultaneous use from above; the sampled simultaneous peak is
  reported too).

``--load`` runs the rounds beside a CPU-bound process (a matrix-product loop on every core at the viewer's own
priority, standing in for a user's other work, e.g. another training run), from before the first round until
after the last; ``load`` in the JSON says which it was.

Needs an X server::

    xvfb-run -a .venv/bin/python benchmarks/ui_round.py [--quick] [--rounds 3] [--load] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    benchmark_model,
    children_peak_rss_mb,
    cpu_load,
    hwm_mb,
    print_table,
    qata_items,
    rss_mb,
    segmenter_folder_in_child,
    stats,
    write_json,
)


def build_project(folder: Path, labeled, unlabeled, model_dir: Path) -> Path:
    """A project with the labeled images corrected (ground truth) and every image prompted with its sentence."""
    import numpy as np

    from napari_amvlm.io import read_image, read_mask
    from napari_amvlm.project import Project

    project = Project.create(folder, name="benchmark")
    with project.transaction():
        sha = project.add_model(model_dir / "segmenter.safetensors", name=model_dir.name).sha256
        for k, it in enumerate(labeled + unlabeled):
            image = read_image(it.image)
            image_id = project.add_image(image, name=it.name)[0]
            project.write_prediction(image_id, np.zeros(image.shape[:2], bool), model=sha, prompt=it.text)
            if k < len(labeled):
                project.mark_corrected(image_id, read_mask(it.mask), author="benchmark",
                                       note="QaTa ground truth, standing in for a hand correction")
    return folder


class TickLog:
    """A precise QTimer on the GUI thread; keeps every tick time so gaps can be read per phase."""

    def __init__(self, interval_ms: int) -> None:
        from qtpy.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.ticks: list[float] = []

    def max_gap_s(self, start: float, end: float, ending_in: tuple[float, float] | None = None) -> float:
        """Largest gap between consecutive ticks (and the ends) of [start, end]; with ``ending_in`` (t0, t1), only
        the gaps that end within (t0, t1]: each gap counts once, in the phase where the event loop got control
        back (a phase mark inside a gap does not split it)."""
        t0, t1 = ending_in or (start, end)
        pts = [start] + [t for t in self.ticks if start < t < end] + [end]
        return max((b - a for a, b in itertools.pairwise(pts) if t0 < b <= t1), default=0.0)


class MemorySampler(threading.Thread):
    """Samples viewer + training-process resident memory every ``period`` s (the simultaneous peak)."""

    def __init__(self, child_pid, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.child_pid, self.period, self.stop = child_pid, period, threading.Event()
        self.peak_sum_mb, self.child_hwm_mb = 0.0, 0.0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(self.period):
            pid = self.child_pid()
            child = (rss_mb(pid) or 0.0) if pid else 0.0
            self.peak_sum_mb = max(self.peak_sum_mb, (rss_mb(me) or 0.0) + child)
            if pid:
                self.child_hwm_mb = max(self.child_hwm_mb, hwm_mb(pid) or child)


def spin(app, done, timeout: float) -> None:
    """Run the Qt event loop (a real one, as napari.run does) until ``done()`` or ``timeout`` seconds."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop, check, t0 = QEventLoop(), QTimer(), time.perf_counter()
    check.setInterval(20)
    check.timeout.connect(lambda: (done() or time.perf_counter() - t0 > timeout) and loop.quit())
    check.start()
    if not done():
        loop.exec()
    check.stop()
    if not done():
        raise SystemExit(f"timed out after {timeout:.0f} s")


def one_round(app, w, log: TickLog, timeout: float) -> dict:
    """Press Retrain once; returns the round's times, gaps, steps and memory."""
    from napari_amvlm.training.rounds import JobState

    marks: dict[str, float] = {}
    errors: list[str] = []
    slots = [(w.runner.launched, lambda *_: marks.setdefault("launched", time.perf_counter())),
             (w.round_finished, lambda *_: marks.setdefault("in_use", time.perf_counter())),
             (w.segmented, lambda *_: "in_use" in marks and marks.setdefault("prompt", time.perf_counter())),
             (w.runner.failed, errors.append), (w.runner.cancelled, errors.append)]
    for signal, slot in slots:
        signal.connect(slot)
    sampler = MemorySampler(lambda: w.runner.job.pid if w.runner.job is not None and w.runner.job.running else None)
    sampler.start()

    def done() -> bool:
        job = w.runner.job
        if "trained" not in marks and job is not None and job.state not in (JobState.NEW, JobState.RUNNING):
            marks["trained"] = time.perf_counter()
        return bool(errors) or ("prompt" in marks and not w.busy and not w.runner.busy)

    t0 = time.perf_counter()
    w.retrain()
    spin(app, done, timeout)
    t_end = time.perf_counter()
    sampler.stop.set()
    sampler.join()
    for signal, slot in slots:
        signal.disconnect(slot)
    if errors:
        raise SystemExit(f"the round failed: {errors[0]}")
    job = w.runner.job
    steps = [e for e in job.events if type(e).__name__ == "StepEvent"]
    start = next((e for e in job.events if type(e).__name__ == "StartEvent"), None)
    marks.setdefault("trained", marks["in_use"])  # the process end was seen only with the finished round
    phases = {"export": (t0, marks["launched"]), "training process": (marks["launched"], marks["trained"]),
              "validate + hot-swap": (marks["trained"], marks["in_use"]),
              "re-run prompt": (marks["in_use"], marks["prompt"]), "after the prompt": (marks["prompt"], t_end)}
    return {
        "round_s": marks["in_use"] - t0,
        "max_gap_ms": 1000 * log.max_gap_s(t0, t_end),
        "phases": {k: {"wall_s": round(b - a, 3),
                       "max_gap_ms": round(1000 * log.max_gap_s(t0, t_end, ending_in=(a, b)), 1)}
                   for k, (a, b) in phases.items()},
        "steps": len(steps), "device": start.device if start else None,
        "round_img_per_s": statistics.median(e.images_per_s for e in steps) if steps else None,
        "labeled": len(job.training_set.labeled), "unlabeled": len(job.training_set.unlabeled),
        "settings": {k: getattr(job.settings, k) for k in ("epochs", "labeled_batch", "unlabeled_batch", "device",
                                                           "cpu_threads")},
        "child_hwm_mb": sampler.child_hwm_mb, "sampled_sum_peak_mb": sampler.peak_sum_mb,
    }


def measure(model_dir: Path, n_labeled: int = 32, n_unlabeled: int = 200, rounds: int = 3,
            epochs: int | None = None, interval_ms: int = 10, timeout: float = 3600, load: bool = False) -> dict:
    """Run ``rounds`` rounds in one viewer; ``epochs`` None keeps the widget's default; ``load``: beside a
    CPU-bound process."""
    from qtpy.QtWidgets import QApplication

    from napari_amvlm._widgets.launch import open_viewer

    work = Path(tempfile.mkdtemp(prefix="amvlm-bench-ui-"))
    tempfile.tempdir = str(work)  # exported training folders go here
    items, source = qata_items("train", n_labeled + n_unlabeled)
    project = build_project(work / "project", items[:n_labeled], items[n_labeled:], model_dir)
    viewer, w = open_viewer("none", str(model_dir), show=True)
    app = QApplication.instance()
    spin(app, lambda: w.model is not None and not w.busy, 600)
    w.open_project(project)  # read on the worker thread, then its first image shown
    spin(app, lambda: w.current is not None and not w.busy, 600)
    if epochs is not None:
        w.ui.epochs.setValue(epochs)
    image = next(layer for layer in viewer.layers if type(layer).__name__ == "Image" and layer.visible)
    got: list = []
    w.segmented.connect(got.append)
    w.segment(image, items[0].text)
    spin(app, lambda: bool(got) and not w.busy, 600)
    log = TickLog(interval_ms)
    log.timer.start()
    reaped_before = children_peak_rss_mb() or 0.0
    with cpu_load(load):
        results = [one_round(app, w, log, timeout) for _ in range(rounds)]
    log.timer.stop()
    viewer_hwm = hwm_mb(os.getpid()) or 0.0
    viewer.close()
    shutil.rmtree(work, ignore_errors=True)
    tempfile.tempdir = None
    # exact peak of the training processes when one of them set a new record among this process's children,
    # else the high-water mark sampled while they ran
    reaped = children_peak_rss_mb() or 0.0
    child_peak = reaped if reaped > reaped_before else max(r["child_hwm_mb"] for r in results)
    return {
        "round_s": stats([r["round_s"] for r in results], 2),
        "ui_max_stall_ms": stats([r["max_gap_ms"] for r in results], 1),
        "peak_rss_mb": round(viewer_hwm + child_peak),
        "viewer_peak_rss_mb": round(viewer_hwm), "training_peak_rss_mb": round(child_peak),
        "sampled_simultaneous_peak_mb": round(max(r["sampled_sum_peak_mb"] for r in results)),
        "round_img_per_s": stats([r["round_img_per_s"] for r in results if r["round_img_per_s"]], 2),
        "probe_interval_ms": interval_ms, "images": source, "load": load, "rounds": results,
    }


def rows(res: dict) -> list[tuple]:
    out = [(name, res[k]["median"], res[k]["min"], res[k]["max"], res[k]["n"])
           for name, k in (("round: Retrain -> new weights in use (s)", "round_s"),
                           ("largest event-loop gap during a round (ms)", "ui_max_stall_ms"),
                           ("round training throughput (img/s)", "round_img_per_s"))]
    out.append(("peak RSS viewer + training process (MB)", res["peak_rss_mb"], None, None, None))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one short round on a few images (checks that it runs)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--rounds", type=int, help="rounds to run (default 3, --quick 1)")
    p.add_argument("--load", action="store_true", help="run the rounds beside a CPU-bound process on every core")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise SystemExit("no X server: run under `xvfb-run -a`")
    with benchmark_model(args.model, segmenter_folder_in_child) as (model, weights):
        if args.quick:
            res = measure(model, 4, 8, args.rounds or 1, epochs=1, timeout=1200, load=args.load)
        else:
            res = measure(model, 32, 200, args.rounds or 3, load=args.load)
    res |= {"model": str(model), "segmenter_weights": weights}
    print(("beside a CPU-bound process on every core (--load)" if args.load else "no load added")
          + f"; 1-min load average at the end {os.getloadavg()[0]:.2f}")
    print_table(rows(res), ("figure", "median", "min", "max", "n"))
    for k, r in enumerate(res["rounds"], 1):
        print(f"round {k}: {r['steps']} steps on {r['device']}; " + "; ".join(
            f"{name} {ph['wall_s']:.1f} s (gap {ph['max_gap_ms']:.0f} ms)" for name, ph in r["phases"].items()))
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
