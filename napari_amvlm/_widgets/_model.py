"""The model of the AMVLM widget: its folder and device, loading it on the worker thread, and whether the image
in view fits it (an H&E tile and the chest X-ray model, a gray film and the histology model): a warning under the
model that names the bundled model made for such images, with a button that loads it. Sample images bring their
bundled model along while a bundled model is in use.

A mixin of :class:`._main.AMVLMWidget` (it uses the widget's ``viewer``, ``ui``, ``jobs``, ``say`` ...).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image
from qtpy.QtWidgets import QFileDialog

from ..model.hub import ModelLoadError
from ..model.trained_on import Fit
from ..resources import models_dir
from . import _gc, _work
from ._jobs import reason
from ._layers import image_model, meta, plane_indices, plane_view


class ModelActions:
    """Model-related behaviour of the widget."""

    viewer: Any
    ui: Any
    model: _work.LoadedModel | None
    busy: bool
    _fits: Path | None = None  # the bundled model the image in view fits, offered by the switch button
    model_folder: Path | None = None  # the folder loading or in use

    @property
    def device(self) -> str:
        return self.ui.device.currentText()

    def _connect_model(self) -> None:
        self.ui.browse_model.clicked.connect(self._browse_model)
        self.ui.device.currentTextChanged.connect(self._device_changed)
        self.ui.switch_model.clicked.connect(lambda: self._fits is not None and self.load_model(self._fits))
        self.viewer.layers.selection.events.active.connect(self._follow_sample_model)
        self.viewer.layers.selection.events.active.connect(self.check_image_fit)

    def _show_folder(self, folder: Path) -> None:
        """The model folder by the Folder box: a bundled model by its name, any other by its path (the whole
        path in the tooltip)."""
        self.model_folder = folder
        bundled = folder.resolve().parent == models_dir().resolve()
        self.ui.model_path.setText(f"{folder.name} (bundled)" if bundled else str(folder))
        self.ui.model_path.setToolTip(str(folder))

    def _device_changed(self, _: str) -> None:
        if self.model is not None:
            self.load_model(self.model.folder, self.model.round)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "AMVLM model folder", str(self.model_folder or ""))
        if folder:
            self.load_model(folder)

    def load_model(self, folder: str | Path, round: int | None = None) -> None:
        """Load a model folder on a worker thread; the current model stays in use if it fails."""
        folder = Path(folder)
        self._show_folder(folder)
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
        self._show_folder(model.folder)
        self.ui.model_info.setText(f"in use: {model.describe()}")
        self.check_image_fit()
        self.check_prompt()
        self.model_changed.emit(model)

    # ----------------------------------------------------------------------------------- image fit
    def check_image_fit(self, *_: Any) -> Fit:
        """Warn under the model when the image in view is unlike the model's training images, naming (and
        offering) the bundled model it fits. Images held lazily (read from disk on demand) are checked when
        they are segmented."""
        image = self._image_in_view()
        pixels = None
        if image is not None and self.model is not None and self.model.trained_on is not None:
            view = plane_view(image, plane_indices(image, self.viewer.dims.point, False)[0])
            pixels = view if isinstance(view, np.ndarray) else None
        return self.show_fit(*_work.image_fit(self.model, pixels))

    def show_fit(self, fit: Fit, other: Path | None) -> Fit:
        """Show (or hide) the warning of ``fit``; ``other``: the bundled model the image fits, if any."""
        ui, self._fits = self.ui, other
        if not fit.ok:
            name = self.model.trained_on.describe() if self.model and self.model.trained_on else "its data"
            hint = f" The bundled model {other.name} is made for images like this one." if other else \
                " No bundled model is made for images like this one."
            ui.fit_warning.setText(f"This image does not look like the images this model was trained on ({name}): "
                                   f"it is {' and '.join(fit.reasons)}. Its masks may mean little.{hint}")
        ui.fit_warning.setVisible(not fit.ok)
        ui.switch_model.setText(f"Use {other.name}" if other else "")
        ui.switch_model.setVisible(not fit.ok and other is not None)
        return fit

    def _image_in_view(self) -> Image | None:
        layer = self.viewer.layers.selection.active
        if isinstance(layer, Image) and not meta(layer).get("uncertainty"):
            return layer
        name = meta(layer).get("image_layer") if layer is not None else None
        found = self.viewer.layers[name] if name in self.viewer.layers else None
        return found if isinstance(found, Image) else None

    # ---------------------------------------------------------------------------------- samples
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
        current = (self.model_folder or Path()).resolve()
        if folder is None or current == folder.resolve() or current.parent != models_dir().resolve():
            return
        self.say(f"using the bundled model {folder.name}, made for images like '{self.viewer.layers.selection.active}'")
        self.load_model(folder)
