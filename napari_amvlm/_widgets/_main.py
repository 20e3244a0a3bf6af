"""The AMVLM dock widget: prompt -> mask, hand correction, Retrain in the background, hot-swap of weights.

A thin adapter: each button calls one engine function (:mod:`._work`, :mod:`napari_amvlm.training.rounds`)
and shows the result as napari layers. Project actions live in :class:`._project.ProjectActions`, the Retrain
round in :mod:`._rounds`.
"""

from __future__ import annotations

import weakref
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_warning
from qtpy.QtCore import QEvent, QObject, QTimer, Signal
from qtpy.QtWidgets import QFileDialog, QWidget

from .._cancel import Cancelled
from ..model.hub import ModelLoadError
from ..inference.postprocess import Cleanup
from ..inference.prompts import convert_sides
from ..resources import default_model_dir, models_dir
from . import _gc, _work
from ._form import STACK_CHOICES, Form
from ._jobs import EXIT_WAIT_S, Jobs, error_message, log, reason
from ._layers import (
    Planes,
    UserError,
    check_labels_shape,
    elide_middle,
    image_model,
    image_text,
    layer_planes,
    meta,
    plane_indices,
    plural,
    remember_image_ids,
    show_result,
    source_image,
)
from ._progress import WorkProgress
from ._project import ProjectActions
from ._rounds import RetrainRunner, RoundActions

TOAST_MS = 8000  # a problem's toast closes after this long, even while the viewer is not the active window


def _close_toasts(text: str) -> None:
    """Fade out the napari toasts showing ``text`` (napari closes its toasts by itself only in the active window;
    a toast of a viewer in the background would stay until the user came back)."""
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari moved it: its own dismissal still applies
        return
    for toast in list(getattr(NapariQtNotification, "_instances", [])):
        try:
            if toast.message.text() == text:
                toast.close_with_fade()
        except (AttributeError, RuntimeError):  # another napari version, or already deleted
            continue


class AMVLMWidget(QWidget, ProjectActions, RoundActions):
    """Dock widget of napari-amvlm (see the module docstring)."""

    segmented = Signal(object)  # the Labels layer a prompt produced or updated
    model_changed = Signal(object)  # the LoadedModel now in use
    round_finished = Signal(object)  # RoundResult of a round whose weights are now in use
    marked = Signal(list)  # project ids of the images whose human labels 'Mark corrected' just stored

    def __init__(self, napari_viewer: Any, model_dir: str | Path | None = None) -> None:
        super().__init__()
        # napari hands plugin widgets a short-lived proxy of the viewer (its plugin-docking path): keep a weak
        # reference to the viewer itself, never to the proxy (a closed viewer must not be kept alive by its dock)
        self._viewer = weakref.ref(getattr(napari_viewer, "__wrapped__", napari_viewer))
        self.ui = Form(self)
        self.model: _work.LoadedModel | None = None
        self.project = None
        self.uncertainty: dict[str, float] = {}  # image id -> mean uncertainty of its latest prediction
        self.busy = False  # a segmentation or model load is running on a worker thread
        self.marking = 0  # corrections queued or being stored
        self._last: tuple[str, str] | None = None  # (image layer, prompt) of the latest segmentation
        self._last_image: Image | None = None
        self._prefilled = ""  # the prompt box's text when it was filled from the image's own sentence
        self._prefilled_from = ""  # that sentence (written in the image's sides)
        self._progress: WorkProgress | None = None  # napari's progress bar of the running load / segmentation
        self.jobs = Jobs(self.report_error)  # the worker thread: every task that reads or writes the project
        self.runner = RetrainRunner(self.jobs, self)
        self._connect()
        self._watch_window_close()
        self._prefill_prompt()
        self.load_model(model_dir or self._sample_model() or default_model_dir())

    @property
    def viewer(self) -> Any:
        viewer = self._viewer()
        if viewer is None:
            raise RuntimeError("the viewer of this widget was closed")
        return viewer

    # ------------------------------------------------------------------------------------- wiring
    def _connect(self) -> None:
        ui = self.ui
        ui.prompt.returnPressed.connect(self.segment)
        ui.segment.clicked.connect(lambda: self.segment())  # not segment(checked)
        ui.mark.clicked.connect(self.mark_corrected)
        ui.browse_model.clicked.connect(self._browse_model)
        ui.device.currentTextChanged.connect(self._device_changed)
        ui.sides.currentIndexChanged.connect(self._sides_changed)
        ui.open_project.clicked.connect(self._browse_open_project)
        ui.save_project.clicked.connect(self._browse_save_project)
        ui.next_uncertain.clicked.connect(self.next_most_uncertain)
        ui.images.itemDoubleClicked.connect(lambda item: self.go_to_image(item.data(256)))
        self._connect_rounds()
        self.viewer.layers.selection.events.active.connect(self._prefill_prompt)
        self.viewer.layers.selection.events.active.connect(self._follow_sample_model)
        self.viewer.layers.events.removed.connect(lambda event: _gc.layer_removed(event.value))

    def say(self, text: str, warn: bool = False) -> None:
        """Show a message in the dock's status line; problems (``warn``) also as a napari notification, which
        closes by itself after a few seconds. (Routine messages are not notifications: each toast repaints the
        whole window for its fade-in, which is what makes a viewer stutter on a software-rendered display.)"""
        self.ui.status.setText(text)
        self.ui.status.setToolTip(text if len(text) > 200 else "")
        if warn:
            show_warning(text)
            QTimer.singleShot(TOAST_MS, partial(_close_toasts, text))

    def report_error(self, what: str, err: BaseException) -> None:
        """Tell the user, in one line, why background work failed (and log it)."""
        self.say(error_message(what, err), warn=not isinstance(err, Cancelled))

    def _run(self, fn: Any, on_done: Any, *args: Any, what: str, steps: int = 0, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` on the worker thread with the widget busy; then ``on_done(result)``. With
        ``steps`` > 1, napari's progress bar shows its steps: ``fn`` gets ``report`` (call it with the number of
        steps done)."""
        self._start_progress(steps, what)
        if self._progress is not None:
            kwargs["report"] = self._progress.report

        def done(result: Any) -> None:
            self.busy = False
            self._end_progress()
            on_done(result)

        def failed(err: BaseException) -> None:
            self.busy = False
            self._end_progress()
            self.report_error(what, err)

        self.busy = self.jobs.submit(partial(fn, **kwargs) if kwargs else fn, *args, on_done=done, on_error=failed,
                                     what=what)
        if not self.busy:  # the widget is closing
            self._end_progress()

    def _start_progress(self, steps: int, what: str) -> None:
        self._end_progress()
        if steps > 1:
            self._progress = WorkProgress(steps, f"AMVLM: {what.lower()}", self)

    def _end_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    # --------------------------------------------------------------------------------------- model
    @property
    def device(self) -> str:
        return self.ui.device.currentText()

    def _device_changed(self, _: str) -> None:
        if self.model is not None:
            self.load_model(self.model.folder, self.model.round)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "AMVLM model folder", str(self.ui.model_path.text()))
        if folder:
            self.load_model(folder)

    def load_model(self, folder: str | Path, round: int | None = None) -> None:
        """Load a model folder on a worker thread; the current model stays in use if it fails."""
        folder = Path(folder)
        self.ui.model_path.setText(str(folder))
        self.ui.model_info.setText(f"loading {folder.name}…")

        def failed(err: BaseException) -> None:
            self.busy = False
            self._end_progress()
            now = f"; still using {self.model.describe()}" if self.model else ""
            why = reason(f"Loading the model {folder}", err)
            bad = isinstance(err, ModelLoadError)
            self.ui.model_info.setText(("not a model: " if bad else "cannot load: ") + why + now)
            self.say(f"'{folder}' is not a usable AMVLM model: {why}{now}", warn=True)

        self._start_progress(_work.LOAD_STEPS, f"loading model {folder.name}")
        self.busy = self.jobs.submit(partial(_work.load, report=self._progress.report), folder, self.device, round,
                                     on_done=self._model_loaded, on_error=failed, what="Loading the model")
        if not self.busy:  # the widget is closing
            self._end_progress()

    def _model_loaded(self, model: _work.LoadedModel) -> None:
        self.ui.cleanup.setChecked(model.segmenter.seg.cfg.cleanup)  # the folder's default (off for histology)
        self._use_model(model)
        viewer = self._viewer()
        _gc.settle(viewer.layers if viewer is not None else [])  # the user was waiting for the model anyway

    def _use_model(self, model: _work.LoadedModel) -> None:
        self.busy = False
        self._end_progress()
        self.model = model
        self.ui.model_path.setText(str(model.folder))
        self.ui.model_info.setText(f"in use: {model.describe()}")
        self.model_changed.emit(model)

    # ------------------------------------------------------------------------------------ segment
    @property
    def sides(self) -> str:
        """What left/right in the prompt box mean: "image" or "patient"."""
        return self.ui.side_convention

    def set_prompt(self, text: str, sides: str = "image") -> None:
        """Put a sentence written in the ``sides`` convention into the prompt box, in the widget's convention."""
        self.ui.prompt.setText(convert_sides(text, sides, self.sides))

    def _prefill_prompt(self, *_: Any) -> None:
        """Fill the prompt box with the selected image's own sentence (sample data: written in the image's sides)
        unless the user typed something else."""
        layer = self.viewer.layers.selection.active
        text = image_text(layer) if isinstance(layer, Image) else ""
        if text and self.ui.prompt.text().strip() in ("", self._prefilled):
            self.set_prompt(text)
            self._prefilled, self._prefilled_from = self.ui.prompt.text(), text

    def _sample_model(self) -> Path | None:
        """The bundled model made for the selected image's kind (sample data) when it ships, else None."""
        layer = self.viewer.layers.selection.active
        name = image_model(layer) if isinstance(layer, Image) else ""
        folder = models_dir() / name if name else None
        return folder if folder is not None and (folder / "config.json").is_file() else None

    def _follow_sample_model(self, *_: Any) -> None:
        """While a bundled model is in use, switch to the bundled model made for the selected sample image (an
        H&E tile gets the MoNuSeg model, a chest X-ray the QaTa one); a model the user chose is never replaced."""
        folder = self._sample_model()
        current = Path(self.ui.model_path.text()).resolve()
        if folder is None or current == folder.resolve() or current.parent != models_dir().resolve():
            return
        self.say(f"using the bundled model {folder.name}, made for images like '{self.viewer.layers.selection.active}'")
        self.load_model(folder)

    def _sides_changed(self, *_: Any) -> None:
        """State the new convention by the prompt box; a prefilled sentence keeps its meaning (it is rewritten)."""
        self.ui.show_sides()
        if self._prefilled and self.ui.prompt.text() == self._prefilled:
            self.set_prompt(self._prefilled_from)
            self._prefilled = self.ui.prompt.text()

    def _target_image(self) -> Image:
        layer = self.viewer.layers.selection.active
        if isinstance(layer, Image) and not meta(layer).get("uncertainty"):
            return layer
        name = meta(layer).get("image_layer") if layer is not None else None
        if name in self.viewer.layers and isinstance(self.viewer.layers[name], Image):
            return self.viewer.layers[name]
        raise UserError("No image layer selected: select the image to segment in the layer list first.")

    @property
    def all_slices(self) -> bool:
        return self.ui.stack.currentText() == STACK_CHOICES[1]

    def segment(self, image: Image | None = None, prompt: str | None = None) -> None:
        """Segment the selected image (or ``image``) for the prompt box's text (or ``prompt``)."""
        prompt = (prompt if prompt is not None else self.ui.prompt.text()).strip()
        try:
            if not prompt:
                raise UserError("The prompt is empty: describe what to segment, e.g. 'lower left lung'.")
            image = image or self._target_image()
            if self.model is None:
                raise UserError("No model loaded yet: pick a model folder (or wait for it to load).")
            if self.busy:
                raise UserError("Still working on the previous request; try again in a moment.")
        except UserError as err:
            self.say(str(err), warn=True)
            return
        project = self.ensure_project()
        planes = layer_planes(project, image, plane_indices(image, self.viewer.dims.point, self.all_slices))
        self._last, self._last_image = (image.name, prompt), image
        self.ui.model_info.setText(f"segmenting with {self.model.describe()}…")
        self._run(_work.predict_planes, lambda res: self._segmented(project, image, res), self.model, project,
                  planes, image.name, prompt, what="Segmentation", steps=len(planes.indices), sides=self.sides,
                  cleanup=Cleanup() if self.ui.cleanup.isChecked() else None, stop=self.jobs.stop)

    def _segmented(self, project: Any, image: Image, res: Any) -> None:
        viewer = self._viewer()
        if viewer is None or image not in viewer.layers:
            return  # the image (or the viewer) was closed meanwhile
        remember_image_ids(project, image, [p.index for p in res.planes], [p.image_id for p in res.planes])
        labels = show_result(self.viewer, image, res)
        for p in res.planes:
            self.uncertainty[p.image_id] = float(p.uncertainty.mean())
        fg = float(np.mean([p.mask.mean() for p in res.planes]))
        hit = ", cached image embedding" if res.cache_hits else ""
        self.ui.model_info.setText(f"in use: {self.model.describe()}" if self.model else "")
        notices = "".join(f"\nNotice: {n}." for n in res.notices)
        self.say(f"'{elide_middle(res.prompt)}': {plural(len(res.planes), 'plane')}, {100 * fg:.1f}% foreground, "
                 f"{res.provenance['seconds']:.2f} s{hit}.{notices}")
        self.refresh_images()
        self.segmented.emit(labels)

    # ----------------------------------------------------------------------------------- correct
    def mark_corrected(self) -> None:
        """Store the selected Labels layer (current slice or all slices) as human labels in the project. The
        masks are taken now; they are written on the worker thread, after every task queued before and before
        every task queued after (a Retrain clicked next exports them)."""
        try:
            project, image, planes, masks, note = self._correction()
        except UserError as err:
            self.say(str(err), warn=True)
            return
        author = self.ui.author.text().strip()

        def done(ids: list[str]) -> None:
            self.marking -= 1
            viewer = self._viewer()
            if viewer is not None and image in viewer.layers:
                remember_image_ids(project, image, planes.indices, ids)
            self.refresh_images()
            self.say(f"Marked {plural(len(ids), 'image')} as corrected by {author} (human labels saved in "
                     f"{project.root}).")
            self.marked.emit(ids)

        def failed(err: BaseException) -> None:
            self.marking -= 1
            self.report_error("Saving the human labels", err)

        if self.jobs.submit(_work.mark_planes, project, planes, masks, author, note, on_done=done, on_error=failed,
                            what="Saving the human labels", cancellable=False):
            self.marking += 1
            self.say(f"Saving the human labels of {plural(len(masks), 'image')}…")

    def _correction(self) -> tuple[Any, Image, Planes, list[np.ndarray], str]:
        """What 'Mark corrected' stores: (project, image layer, its planes, masks, note); UserError if the
        selection cannot be stored."""
        labels = self.viewer.layers.selection.active
        if not isinstance(labels, Labels):
            raise UserError("Select the Labels layer you corrected (the active layer is not a Labels layer).")
        image = source_image(self.viewer, labels, self._last_image)
        if image is None:
            raise UserError(f"Cannot tell which image '{labels.name}' belongs to: segment the image first.")
        check_labels_shape(labels, image)
        if not self.ui.author.text().strip():
            raise UserError("Type your name in 'Annotator': a human label needs the person who corrected it.")
        project = self.project_for(labels)
        planes = layer_planes(project, image, plane_indices(image, self.viewer.dims.point, self.all_slices))
        masks = [np.asarray(labels.data[index]) != 0 for index in planes.indices]  # a copy: painting may go on
        return project, image, planes, masks, f"corrected in napari ('{labels.name}')"

    # ------------------------------------------------------------------------------- close viewer
    def _watch_window_close(self) -> None:
        """End a running round when the viewer's window closes (or this widget is deleted)."""
        runner, jobs = self.runner, self.jobs
        self.destroyed.connect(lambda *_: _viewer_gone(runner, jobs))
        QTimer.singleShot(0, self._install_close_filter)

    def _install_close_filter(self) -> None:
        window = self.window()
        if window is not None and window is not self:
            self._close_filter = _CloseFilter(window, self.runner, self.jobs)
            window.installEventFilter(self._close_filter)


class _CloseFilter(QObject):
    """Sees the main window's Close event; once the window is really gone, stops the training process."""

    def __init__(self, window: QWidget, runner: RetrainRunner, jobs: Jobs) -> None:
        super().__init__(window)
        self._window, self._runner, self._jobs = weakref.ref(window), runner, jobs

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close:
            window, runner, jobs = self._window, self._runner, self._jobs
            QTimer.singleShot(0, lambda: _closed(window()) and _viewer_gone(runner, jobs))
        return False


def _viewer_gone(runner: RetrainRunner, jobs: Jobs) -> None:
    """The viewer closed (or the widget was deleted): cancel its background tasks and wait for those that store
    corrections, end its training round, and lift the collector's freeze."""
    if not jobs.shutdown(timeout=EXIT_WAIT_S):
        log.error("a background task of the closed viewer is still running")
    runner.shutdown()
    _gc.release()


def _closed(window: QWidget | None) -> bool:
    try:
        return window is None or not window.isVisible()
    except RuntimeError:  # already deleted
        return True
