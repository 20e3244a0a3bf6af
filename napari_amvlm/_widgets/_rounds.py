"""The Retrain round on the widget's side, in one place: the button, Cancel, the progress bar in the dock, the
hot-swap of the new weights and the re-run of the last prompt (:class:`RoundActions`), and the runner that
exports the project, starts the training process and polls it (:class:`RetrainRunner`).

Rounds are polled from a QTimer on the GUI thread; polling only drains a queue filled by the
:class:`napari_amvlm.training.rounds.RetrainJob` pipe reader, so the event loop never waits for the training
process. The export and the validation run on the widget's worker thread (:class:`._jobs.Jobs`), after the tasks
queued before them (a correction marked just before Retrain is in the round).
"""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtCore import QObject, QTimer, Signal

from ..inference.prompts import to_model_sides
from ..training.events import StartEvent, StepEvent
from ..training.round_models import RoundResult
from ..training.rounds import JobState, RetrainJob, RetrainSettings
from . import _work
from ._jobs import Jobs, reason

POLL_MS = 100  # how often the GUI thread reads the training process's progress


class RoundActions:
    """Retrain / Cancel of the widget (a mixin of :class:`._main.AMVLMWidget`: it uses the widget's ``ui``,
    ``model``, ``project``, ``say`` ...)."""

    ui: Any
    runner: RetrainRunner

    def _connect_rounds(self) -> None:
        self.ui.retrain.clicked.connect(self.retrain)
        self.ui.cancel.clicked.connect(self.cancel_retrain)
        self.runner.finished.connect(self._round_finished)
        self.runner.launched.connect(self._round_launched)
        self.runner.progressed.connect(self._show_progress)
        self.runner.failed.connect(lambda msg: self._round_ended(msg, warn=True))
        self.runner.cancelled.connect(lambda msg: self._round_ended(msg, warn=False))

    def _show_progress(self, step: int, total: int, text: str) -> None:
        bar = self.ui.progress
        if step < 0:
            bar.setEnabled(False)  # blank (see Form)
            bar.setToolTip("")
            return
        bar.setRange(0, max(total, 1))  # never (0, 0): Qt's busy animation would repaint the window non-stop
        bar.setValue(max(step, 0))
        bar.setFormat(text.removeprefix("AMVLM "))
        bar.setToolTip(text)
        bar.setEnabled(True)

    def retrain(self) -> None:
        """Start a Mean-Teacher round in a separate process (corrected images labeled, the rest unlabeled)."""
        if self.runner.busy:
            step = self.runner.job.last_step if self.runner.job else None
            where = f" (step {step.step}/{step.total_steps})" if step else ""
            self.say(f"A training round is already running{where}: wait for it or press Cancel.", warn=True)
            return
        if self.model is None:
            self.say("No model loaded: load a model before retraining it.", warn=True)
            return
        if self.project is None or not (self.marking or self.project.image_ids("corrected")):
            self.say("No corrected image yet: correct a mask and press 'Mark corrected' before Retrain.", warn=True)
            return
        settings = RetrainSettings(epochs=self.ui.epochs.value(), device=self.device)
        prompt = self.ui.prompt.text().strip()
        job = RetrainJob(self.project, self.model.folder, settings,
                         default_prompt=to_model_sides(prompt, self.sides) if prompt else None)
        self.runner.start(job, self.device)
        self.ui.cancel.setEnabled(True)
        self.say(f"Round {job.round_index}: exporting the project for training…")

    def _round_launched(self, job: RetrainJob) -> None:
        self.say(f"Round {job.round_index} is training in a separate process (pid {job.pid}); the viewer stays "
                 "usable.")

    def cancel_retrain(self) -> None:
        if not self.runner.busy:
            self.say("No training round is running.")
            return
        self.runner.cancel()
        self.say("Cancelling the training round…")

    def _round_ended(self, message: str, warn: bool) -> None:
        self.ui.cancel.setEnabled(False)
        self.say(message, warn=warn)

    def _round_finished(self, result: RoundResult) -> None:
        self.ui.cancel.setEnabled(False)
        self._show_project()  # (a round changes no image's status: the list stays as it is)
        if not result.installed:  # the guard kept the weights in use: say so, with both figures
            self.say(result.message, warn=True)
            self.round_finished.emit(result)
            return
        self._use_model(_work.from_round(result, self.device, self.model.trained_on if self.model else None))
        self.say(result.message or f"Round {result.index} finished: its weights are in use ({result.folder}).")
        self.round_finished.emit(result)
        # the prompt re-run starts on a later turn of the event loop, so the viewer repaints in between
        QTimer.singleShot(0, self._rerun_last_prompt)

    def _rerun_last_prompt(self) -> None:
        viewer = self._viewer()
        if viewer is not None and self._last and self._last[0] in viewer.layers and not self.busy:
            self.segment(viewer.layers[self._last[0]], self._last[1])


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

    def __init__(self, jobs: Jobs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs  # the export and the validation run there, after the tasks queued before them
        self.job: RetrainJob | None = None
        self.device = "cpu"
        self.desc = ""  # the last progress line
        self._working = False  # the export or the validation is queued or running
        self._cancel = False
        self._step = self._total = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._tick)

    @property
    def busy(self) -> bool:
        """A round is being exported, trained or validated."""
        return (self.job is not None and self.job.running) or self._working

    def start(self, job: RetrainJob, device: str) -> None:
        """Export the project on a worker thread, then start the training process from the GUI thread (so
        that the child ends with the viewer). Problems with the input arrive as ``failed``."""
        self.job, self.device, self._cancel = job, device, False
        self._report(0, 0, f"AMVLM round {job.round_index}: exporting the project")
        self._working = self.jobs.submit(job.prepare, self.jobs.stop, on_done=self._prepared,
                                         on_error=self._prepare_failed, what="Retrain")

    def _prepared(self, _: object) -> None:
        self._working = False
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

    def _prepare_failed(self, err: BaseException) -> None:
        self._working = False
        self._progress_done()
        self.failed.emit(f"Retrain cannot start: {reason('Retrain', err)}")

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
            self.job.discard()  # an export that was ready but never launched

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
            self._working = self.jobs.submit(job.finalize, self.device, on_done=self._finalized,
                                             on_error=self._finalize_failed, what="Loading the new weights")
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
        self._working = False
        self.finished.emit(result)

    def _finalize_failed(self, err: BaseException) -> None:
        self._working = False
        self.failed.emit(f"the new weights were not used: {reason('Loading the new weights', err)}")
