"""The project's images as a series, annotated one at a time: the image list (name, status, uncertainty; sortable),
next / previous / next most uncertain / pick from the list, and images or a folder added from the widget.

Going to an image shows exactly that image on the canvas with its mask: the layer that already shows it (an image
the user opened and segmented), or else the widget's own pair of layers, an image and its mask named after the
project image, whose content is swapped for each image (read on the worker thread). Every other image and labels
layer is hidden. A mask edited but not marked corrected when the series moves on is kept as a draft, shown again
when the series comes back to its image.

A mixin of :class:`._main.AMVLMWidget` (it uses the widget's ``viewer``, ``ui``, ``project``, ``say`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog

from ..inference.postprocess import Cleanup
from ..project import Status
from . import _work
from ._layers import KEY, MaskState, follow_transform, lead_shape, mask_layer, meta, plural, transform_of
from ._table import ImageTable

IMAGE_FILES = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"
READ_RETRY_MS = 100  # the list is made again this much later while the worker thread writes to the project
DRAFT = "edited, not marked"  # the status shown for an image whose edited mask is kept as a draft


@dataclass
class Draft:
    """A mask edited but not marked corrected, kept while the series shows other images."""

    mask: np.ndarray
    state: MaskState  # what the person started from


class SeriesActions:
    """The series behaviour of the widget (see the module docstring)."""

    viewer: Any
    ui: Any
    project: Any
    uncertainty: dict[str, float]
    jobs: Any
    current: str | None = None  # the project image shown by the series
    drafts: dict[str, Draft]
    table: ImageTable

    # -------------------------------------------------------------------------------------- the list
    def refresh_images(self) -> None:
        """List the project's images with their status and uncertainty."""
        self._show_project()
        p = self.project
        rows = []
        if p is not None:
            with p.reading(0.02) as consistent:  # (the worker thread may be writing)
                if not consistent:  # the worker thread is writing: list the images once it is done
                    QTimer.singleShot(READ_RETRY_MS, self.refresh_images)
                    return
                rows = [(rec.id, rec.name, self._status(rec.id), self.uncertainty.get(rec.id)) for rec in p.images()]
        self.table.show_rows(rows, self.current)
        self._show_current()

    def _show_current(self) -> None:
        p, i = self.project, self.current
        if p is None or i is None or i not in p:
            self.ui.current.setText("no image shown yet: segment one, or pick one below")
            self.ui.position.setText("")
            return
        order = self.table.ids()
        k = order.index(i) + 1 if i in order else 0
        self.ui.current.setText(p.image(i).name)
        self.ui.position.setText(f"{k}/{len(order)} {self._status(i)}")

    # ---------------------------------------------------------------------------------- navigation
    def next_image(self, step: int = 1) -> None:
        """Show the next image of the list (``step`` -1: the previous one), in the list's order."""
        order = self.table.ids()
        if not order:
            self.say("No project images yet: add images or segment one first.", warn=True)
            return
        k = order.index(self.current) + step if self.current in order else 0
        if not 0 <= k < len(order):
            self.say(f"This is the {'last' if step > 0 else 'first'} image of the list.")
            return
        self.go_to_image(order[k])

    def previous_image(self) -> None:
        self.next_image(-1)

    def next_most_uncertain(self) -> None:
        """Show the uncorrected image with the highest mean uncertainty (scoring unscored images first)."""
        if self.project is None or not len(self.project):
            self.say("No project images yet: add images or segment one first.", warn=True)
            return
        with self.project.reading():
            todo = [i for i in self.project.image_ids() if self.project.status(i) is not Status.CORRECTED]
        if not todo:
            self.say("Every image of the project is corrected.")
            return
        unscored = [i for i in todo if i not in self.uncertainty]
        if unscored and self.model is not None and not self.busy:
            cleanup = Cleanup() if self.ui.cleanup.isChecked() else None
            self._run(_work.score_images, lambda s: self._pick_uncertain(todo, s), self.model, self.project,
                      unscored, self.ui.prompt.text(), self.sides, self.jobs.stop, what="Scoring images",
                      steps=len(unscored), cleanup=cleanup)
        else:
            self._pick_uncertain(todo, None)

    def _pick_uncertain(self, todo: list[str], scores: _work.Scores | None) -> None:
        if scores is not None:
            self.uncertainty.update(scores.means)
            for image_id in sorted(scores.maps, key=scores.means.get):  # the most uncertain last: kept longest
                self.remember_map(image_id, scores.maps[image_id])
        scored = [i for i in todo if i in self.uncertainty]
        if not scored:
            self.say("No uncertainty known yet: segment an image first (or type a prompt).", warn=True)
            return
        best = max(scored, key=lambda i: self.uncertainty[i])
        self.refresh_images()  # (the new scores)
        self.go_to_image(best)
        self.say(f"Most uncertain uncorrected image: {self.project.image(best).name} "
                 f"(mean uncertainty {self.uncertainty[best]:.3f}).")

    def go_to_image(self, image_id: str | None) -> None:
        """Show one project image (and only it) with its mask, and select the mask for correction."""
        if not image_id or self.project is None or image_id not in self.project:
            return
        shown = self._layer_showing(image_id)
        if shown is not None:
            self._leave_series_image()
            self._arrive(image_id, *shown)
            return
        self._run(_work.read_shown, lambda s: self._show_in_series(image_id, s), self.project, image_id,
                  self.drafts.get(image_id), what="Reading the image")

    def _layer_showing(self, image_id: str) -> tuple[Image, Labels | None] | None:
        """(image layer, its mask) of a layer the user opened that shows ``image_id`` (its slice selected)."""
        root = str(self.project.root)
        for layer in self.viewer.layers:
            ids = meta(layer).get("image_ids") or []
            if isinstance(layer, Image) and image_id in ids and meta(layer).get("project") == root \
                    and not meta(layer).get("series") and not meta(layer).get("uncertainty"):
                self._show_slice(layer, ids.index(image_id))
                return layer, mask_layer(self.viewer, layer)
        return None

    def _show_slice(self, layer: Image, k: int) -> None:
        lead = lead_shape(layer)
        if not lead:
            return
        offset = self.viewer.dims.ndim - layer.ndim
        for axis, i in enumerate(np.unravel_index(k, lead)):
            self.viewer.dims.set_point(offset + axis, layer.translate[axis] + int(i) * layer.scale[axis])

    def _show_in_series(self, image_id: str, shown: _work.Shown) -> None:
        """On the GUI thread: put the image read by :func:`._work.read_shown` into the series layers."""
        if self.project is None or image_id not in self.project:
            return
        self._leave_series_image()
        image, labels = self._series_layers()
        rec = shown.record
        if image is not None and image.rgb != rec.rgb:  # a layer's rgb is fixed: make new layers
            self.viewer.layers.remove(labels)
            self.viewer.layers.remove(image)
            image = labels = None
        ids = {"project": str(self.project.root), "image_ids": [image_id], "series": True}
        limits = (rec.vmin, rec.vmax if rec.vmax > rec.vmin else rec.vmin + 1)
        if image is None:  # the image layer now, its mask on the next turn of the event loop (two short waits)
            image = self.viewer.add_image(shown.pixels, name=rec.name, rgb=rec.rgb, contrast_limits=limits,
                                          metadata={KEY: ids})
            QTimer.singleShot(0, partial(self._show_series_mask, image_id, image, shown))
            return
        image.data, image.name, image.contrast_limits = shown.pixels, rec.name, limits
        image.metadata = {**image.metadata, KEY: ids}
        labels.data, labels.name = shown.mask, f"{image.name} mask"
        self._show_series_mask(image_id, image, shown, labels)

    def _show_series_mask(self, image_id: str, image: Image, shown: _work.Shown, labels: Labels | None = None) -> None:
        if image not in self.viewer.layers:
            return
        if labels is None:
            labels = self.viewer.add_labels(shown.mask, name=f"{image.name} mask", metadata={KEY: {}},
                                            **transform_of(image))
            follow_transform(image, labels)
        labels.metadata = {**labels.metadata, KEY: {**shown.state.provenance, "what": "mask", "series": True,
                                                    "image_layer": image.name, "image_ids": [image_id]}}
        self.remember_shown(labels, {(): shown.state})
        self._arrive(image_id, image, labels)

    def _series_layers(self) -> tuple[Image | None, Labels | None]:
        image = next((la for la in self.viewer.layers if isinstance(la, Image) and meta(la).get("series")), None)
        labels = next((la for la in self.viewer.layers if isinstance(la, Labels) and meta(la).get("series")), None)
        if (image is None) != (labels is None):  # the user removed one of the pair: start again
            for layer in (image, labels):
                if layer is not None:
                    self.viewer.layers.remove(layer)
            return None, None
        return image, labels

    def _leave_series_image(self) -> None:
        """Keep the series mask as a draft when it was edited and not marked (nothing is lost)."""
        _, labels = self._series_layers()
        if labels is None:
            return
        (image_id,) = meta(labels).get("image_ids") or [None]
        state = self.shown_state(labels, ())
        if image_id is None or state is None:
            return
        if state.edited(labels.data):
            self.drafts[image_id] = Draft(np.array(labels.data), state)
        else:
            self.drafts.pop(image_id, None)
        if image_id in self.project:
            self.table.set_status(image_id, self._status(image_id))

    def _status(self, image_id: str) -> str:
        """What the list says of an image: its status in the project, or that it has an unsaved draft."""
        status = self.project.status(image_id)
        return DRAFT if image_id in self.drafts and status is not Status.CORRECTED else status.value

    def _arrive(self, image_id: str, image: Image, labels: Labels | None) -> None:
        """Show only ``image`` and its mask; select the mask (ready for the brush) or the image."""
        for layer in self.viewer.layers:  # (each change of visibility redraws: only what changes)
            if isinstance(layer, (Image, Labels)) and layer.visible != (layer in (image, labels)):
                layer.visible = not layer.visible
        self.current = image_id
        self.viewer.layers.selection.active = labels if labels is not None else image
        prompts = self.project.prompts(image_id)
        if prompts:
            self.set_prompt(prompts[-1].text, prompts[-1].sides)
        self.table.select(image_id)
        self._show_current()
        self.check_image_fit()  # (the selected mask layer may be the same: its image changed)
        self.update_mark_button()
        if self.ui.show_uncertainty.isChecked():
            self.show_uncertainty_map()

    # ---------------------------------------------------------------------------------- add images
    def _browse_add_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add images to the project", "", IMAGE_FILES)
        if paths:
            self.add_images(paths)

    def _browse_add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of images to the project")
        if folder:
            self.add_images([folder])

    def add_images(self, paths: list[str]) -> None:
        """Add image files (or folders of them) to the project on the worker thread, then show the first."""
        if self.runner.busy:
            self.say("A training round is running on the project: add images once it ends.", warn=True)
            return
        project = self.ensure_project()
        before = len(project)

        def added(ids: list[str]) -> None:
            self.refresh_images()
            new = len(project) - before
            self.say(f"Added {plural(new, 'image')} to the project"
                     + (f" ({plural(len(ids) - new, 'image')} already in it)." if len(ids) > new else "."))
            if ids:
                self.go_to_image(ids[0])

        self._run(_work.add_images, added, project, list(paths), what="Adding images")
