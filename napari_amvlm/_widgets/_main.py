"""The AMVLM dock widget: prompt -> mask, hand correction, Retrain in the background, hot-swap of weights.

A thin adapter: each button calls one engine function (:mod:`._work`, :mod:`napari_amvlm.training.rounds`)
and shows the result as napari layers. The model lives in :mod:`._model`, corrections in :mod:`._correct`, the
project in :mod:`._project`, its images as a series in :mod:`._series`, the Retrain round in :mod:`._rounds`.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_warning
from qtpy.QtCore import QEvent, QObject, QTimer, Signal
from qtpy.QtWidgets import QWidget

from .._cancel import Cancelled
from ..inference.postprocess import Cleanup
from ..inference.prompts import convert_sides
from ..resources import default_model_dir
from . import _gc, _work
from ._correct import CorrectActions
from ._form import STACK_CHOICES, Form
from ._jobs import EXIT_WAIT_S, Jobs, error_message, log
from ._layers import (
    MaskState,
    UserError,
    elide_middle,
    hide_uncertainty,
    image_text,
    layer_planes,
    mask_layer,
    meta,
    plane_indices,
    plural,
    remember_image_ids,
    show_result,
    show_uncertainty,
)
from ._model import ModelActions
from ._progress import WorkProgress
from ._project import ProjectActions
from ._rounds import RetrainRunner, RoundActions
from ._series import Draft, SeriesActions

TOAST_MS = 8000  # a problem's toast closes after this long, even while the viewer is not the active window
MAPS_KEPT = 64  # uncertainty maps kept in memory (the latest predictions'), for the Uncertainty checkbox
PROMPT_CHECK_MS = 300  # the prompt box is checked for words the model cannot follow this long after typing


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


class AMVLMWidget(QWidget, ModelActions, CorrectActions, ProjectActions, SeriesActions, RoundActions):
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
        self.maps: OrderedDict[str, np.ndarray] = OrderedDict()  # image id -> its latest uncertainty map (LRU)
        self.busy = False  # a segmentation or model load is running on a worker thread
        self.saving = False  # the project is being copied to its new folder
        self.marking = 0  # corrections queued or being stored
        self.drafts: dict[str, Draft] = {}  # image id -> a mask edited in the series and not marked
        self.table = self.ui.images
        self._replace: tuple[int, tuple] | None = None  # (mask, planes) the user was told Segment would replace
        self._last: tuple[str, str] | None = None  # (image layer, prompt) of the latest segmentation
        self._last_image: Image | None = None
        self._prefilled = ""  # the prompt box's text when it was filled from the image's own sentence
        self._prefilled_from = ""  # that sentence (written in the image's sides)
        self._progress: WorkProgress | None = None  # napari's progress bar of the running load / segmentation
        self.jobs = Jobs(self.report_error)  # the worker thread: every task that reads or writes the project
        self.runner = RetrainRunner(self.jobs, self)
        self._init_correct()
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
        ui.sides.currentIndexChanged.connect(self._sides_changed)
        self._prompt_timer = QTimer(self)  # the prompt is checked once typing pauses
        self._prompt_timer.setSingleShot(True)
        self._prompt_timer.setInterval(PROMPT_CHECK_MS)
        self._prompt_timer.timeout.connect(self.check_prompt)
        ui.prompt.textChanged.connect(lambda *_: self._prompt_timer.start())
        ui.open_project.clicked.connect(self._browse_open_project)
        ui.save_project.clicked.connect(self._browse_save_project)
        ui.add_images.triggered.connect(self._browse_add_images)
        ui.add_folder.triggered.connect(self._browse_add_folder)
        ui.export_png.triggered.connect(lambda: self._browse_export("png"))
        ui.export_tif.triggered.connect(lambda: self._browse_export("tif"))
        ui.export_beside_files.triggered.connect(lambda: self._browse_export_beside(series=False))
        ui.export_beside_series.triggered.connect(lambda: self._browse_export_beside(series=True))
        ui.previous.clicked.connect(self.previous_image)
        ui.next.clicked.connect(lambda: self.next_image())
        ui.next_uncertain.clicked.connect(self.next_most_uncertain)
        ui.images.activated.connect(self.go_to_image)
        ui.show_uncertainty.toggled.connect(lambda *_: self.show_uncertainty_map())
        self._connect_model()
        self._connect_rounds()
        self.viewer.layers.selection.events.active.connect(self._prefill_prompt)
        self.viewer.layers.events.removed.connect(lambda event: _gc.layer_removed(event.value))

    def say(self, text: str, warn: bool = False) -> None:
        """Show a message in the dock's status line; problems (``warn``) also as a napari notification, which
        closes by itself after a few seconds. (Routine messages are not notifications: each toast repaints the
        whole window for its fade-in, which is what makes a viewer stutter on a software-rendered display.)"""
        self.ui.status.setText(text)  # (the whole of a message cut short is in its tooltip)
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

    def _sides_changed(self, *_: Any) -> None:
        """State the new convention by the prompt box; a prefilled sentence keeps its meaning (it is rewritten)."""
        self.ui.show_sides()
        self._prompt_timer.start()
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
            if self.saving:
                raise UserError("Still saving the project into its new folder: segment in a moment.")
        except UserError as err:
            self.say(str(err), warn=True)
            return
        indices = plane_indices(image, self.viewer.dims.point, self.all_slices)
        if self._would_replace_edits(image, indices):
            return
        project = self.ensure_project()
        planes = layer_planes(project, image, indices)
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
        what = {k: res.provenance.get(k) for k in ("model", "round", "sides")}
        self.remember_shown(labels, {p.index: MaskState(p.mask.astype(np.uint8), {
            "what": "prediction", "prompt": res.prompt, **what}) for p in res.planes})
        if res.fit is not None:
            self.show_fit(*res.fit)
        for p in res.planes:
            self.uncertainty[p.image_id] = float(p.uncertainty.mean())
            self.remember_map(p.image_id, p.uncertainty)
        self.show_uncertainty_map()
        fg = float(np.mean([p.mask.mean() for p in res.planes]))
        hit = ", cached image embedding" if res.cache_hits else ""
        self.ui.model_info.setText(f"in use: {self.model.describe()}" if self.model else "")
        notices = "".join(f"\nNotice: {n}." for n in res.notices)
        self.say(f"'{elide_middle(res.prompt)}': {plural(len(res.planes), 'plane')}, {100 * fg:.1f}% foreground, "
                 f"{res.provenance['seconds']:.2f} s{hit}.{notices}")
        if meta(image).get("series") or len(res.planes) == 1:
            self.current = res.planes[0].image_id
        self.refresh_images()
        self.segmented.emit(labels)

    def _would_replace_edits(self, image: Image, indices: list) -> bool:
        """Whether Segment would overwrite what the person painted on the image's mask (and was not told yet:
        the first press says so, a second press replaces it)."""
        labels = mask_layer(self.viewer, image)
        edited = tuple(i for i in indices if labels is not None and self.edited(labels, i))
        if not edited or self._replace == (id(labels), edited):
            self._replace = None
            return False
        self._replace = (id(labels), edited)
        self.say(f"You edited the mask '{labels.name}' and did not mark it corrected: press Segment again to "
                 "replace your edits with a new mask, or press Mark corrected first.", warn=True)
        return True

    def remember_map(self, image_id: str, uncertainty: np.ndarray) -> None:
        """Keep an image's latest uncertainty map (the last MAPS_KEPT of them) for the Uncertainty checkbox."""
        self.maps[image_id] = uncertainty
        self.maps.move_to_end(image_id)
        while len(self.maps) > MAPS_KEPT:
            self.maps.popitem(last=False)

    def show_uncertainty_map(self) -> None:
        """Show (Uncertainty checked) or remove the uncertainty layer of the image in view."""
        image = self._image_in_view()
        if self.ui.show_uncertainty.isChecked() and image is not None:
            show_uncertainty(self.viewer, image, self.maps)
        else:
            hide_uncertainty(self.viewer)

    def check_prompt(self) -> None:
        """Show, by the prompt box, what of the prompt the model cannot follow (negation, words it was not
        trained on, another alphabet, text past its token limit)."""
        text = self.ui.prompt.text().strip()
        notices: list[str] = []
        if text and self.model is not None:
            try:
                notices = self.model.segmenter.prepare(text, self.sides).notices
            except ValueError as err:
                notices = [str(err)]
        self.ui.prompt_warning.setText("\n".join(f"{n[0].upper()}{n[1:]}." for n in notices))
        self.ui.prompt_warning.setVisible(bool(notices))

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
