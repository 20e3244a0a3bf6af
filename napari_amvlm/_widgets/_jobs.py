"""Background work of the AMVLM widget: short tasks on a worker thread, training rounds in a child process.

A training round is polled from a QTimer on the GUI thread; polling only drains a queue filled by the
:class:`napari_amvlm.training.rounds.RetrainJob` pipe reader, so the event loop never waits for the training
process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

from qtpy.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from ..training.events import StartEvent, StepEvent
from ..training.round_models import RoundResult
from ..training.rounds import JobState, RetrainJob

POLL_MS = 100  # how often the GUI thread reads the training process's progress
_LIVE: dict[int, Any] = {}  # workers kept alive until the GUI thread has seen them finish


def _release(key: int) -> None:
    QTimer.singleShot(0, lambda: _LIVE.pop(key, None))


def run_in_thread(fn: Callable[..., Any], on_done: Callable[[Any], None], on_error: Callable[[Exception], None],
                  *args: Any) -> Any:
    """Run ``fn(*args)`` on a worker thread; the callbacks run on the GUI thread. (superqt's worker, not
    napari's: napari's registers every worker with the window for good, which keeps the widget alive.)"""
    worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True)  # errors go to on_error
    worker.returned.connect(on_done)
    worker.errored.connect(on_error)
    # superqt drops its own reference from the worker thread as the last signal goes out, which can delete the
    # signals object while Qt still uses it; this reference is dropped on the GUI thread after "finished"
    _LIVE[id(worker)] = worker
    worker.finished.connect(partial(_release, id(worker)))
    worker.start()
    return worker


class RetrainRunner(QObject):
    """Runs one :class:`RetrainJob` at a time and reports its progress as ``progressed(step, total, text)``.

    Progress goes to a bar in the dock (not napari's activity dock or toasts): every repaint of a napari window
    recomposites the whole window, so the round keeps what it repaints small and rare (at most one update per
    poll, only when something changed)."""

    finished = Signal(object)  # RoundResult: validated, recorded, loaded; ready to hot-swap
    failed = Signal(str)  # crash, kill, bad output: the previous weights stay in use
    cancelled = Signal(str)
    launched = Signal(object)  # the RetrainJob whose process just started
    progressed = Signal(int, int, str)  # step, total steps (0: unknown yet), one line; step -1: the round ended

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: RetrainJob | None = None
        self.device = "cpu"
        self.desc = ""  # the last progress line
        self._worker: Any = None
        self._cancel = False
        self._step = self._total = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._tick)

    @property
    def busy(self) -> bool:
        """A round is being exported, trained or validated."""
        return (self.job is not None and self.job.running) or self._worker is not None

    def start(self, job: RetrainJob, device: str) -> None:
        """Export the project on a worker thread, then start the training process from the GUI thread (so
        that the child ends with the viewer). Problems with the input arrive as ``failed``."""
        self.job, self.device, self._cancel = job, device, False
        self._report(0, 0, f"AMVLM round {job.round_index}: exporting the project")
        self._worker = run_in_thread(job.prepare, self._prepared, self._prepare_failed)

    def _prepared(self, _: object) -> None:
        self._worker = None
        job = self.job
        if self._cancel or job is None:
            job and job.discard()
            self._progress_done()
            self.cancelled.emit("training cancelled before it started; the previous weights are kept")
            return
        try:
            job.launch()
        except OSError as err:
            job.discard()
            self._prepare_failed(err)
            return
        self._report(0, 0, f"AMVLM round {job.round_index}: starting the training process")
        self._timer.start()
        self.launched.emit(job)

    def _prepare_failed(self, err: Exception) -> None:
        self._worker = None
        self._progress_done()
        self.failed.emit(f"Retrain cannot start: {err}")

    def cancel(self) -> None:
        self._cancel = True
        if self.job is not None and self.job.running:
            self.job.cancel()
            self._report(self._step, self._total, f"AMVLM round {self.job.round_index}: cancelling")

    def shutdown(self) -> None:
        """Stop everything now (the viewer is closing): the training process ends before this returns."""
        try:
            self._timer.stop()
        except RuntimeError:  # the Qt side is already deleted; the job is plain Python
            pass
        if self.job is not None:
            self.job.cancel(wait=True)  # (no progress report: the widgets are going away)

    def _tick(self) -> None:
        job = self.job
        if job is None:
            return
        events = job.poll()
        for ev in events:
            self._show(job, ev)
        if events:
            self.progressed.emit(self._step, self._total, self.desc)
        if job.running:
            return
        self._timer.stop()
        self._progress_done()
        if job.state is JobState.SUCCEEDED:
            self._worker = run_in_thread(job.finalize, self._finalized, self._finalize_failed, self.device)
        elif job.state is JobState.CANCELLED:
            self.cancelled.emit(job.message)
        else:
            self.failed.emit(job.message)

    def _show(self, job: RetrainJob, ev: object) -> None:
        """Fold one event into the progress state (reported once per poll)."""
        if isinstance(ev, StartEvent):
            self._step, self._total = ev.start_step, ev.total_steps
            self.desc = f"AMVLM round {job.round_index}: training on {ev.device}"
        elif isinstance(ev, StepEvent):
            loss = ev.losses.get("loss", math.nan)
            self._step, self._total = ev.step, ev.total_steps
            self.desc = f"AMVLM round {job.round_index}: step {ev.step}/{ev.total_steps}, loss {loss:.3f}"

    def _report(self, step: int, total: int, text: str) -> None:
        self._step, self._total, self.desc = step, total, text
        self.progressed.emit(step, total, text)

    def _progress_done(self) -> None:
        self.progressed.emit(-1, 0, "")

    def _finalized(self, result: RoundResult) -> None:
        self._worker = None
        self.finished.emit(result)

    def _finalize_failed(self, err: Exception) -> None:
        self._worker = None
        self.failed.emit(f"the new weights were not used: {err}")
