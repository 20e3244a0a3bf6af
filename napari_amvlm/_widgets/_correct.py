"""Correcting a mask and storing it as the human label: **Accept as is** while the mask is what the widget showed
(the model's prediction, or the stored label), **Mark corrected** once the person edited it. The project records
how much they changed (``changed`` in the label's provenance: the annotation loop's edit effort), counted from
what the widget showed them, which is kept per mask plane (:class:`._layers.MaskState`).

A mixin of :class:`._main.AMVLMWidget` (it uses the widget's ``viewer``, ``ui``, ``jobs``, ``say`` ...).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QTimer

from . import _work
from ._form import ACCEPT, MARK
from ._layers import (
    Index,
    MaskState,
    Planes,
    UserError,
    check_labels_shape,
    layer_planes,
    meta,
    plane_indices,
    plural,
    remember_image_ids,
    source_image,
)


class CorrectActions:
    """The correction behaviour of the widget (see the module docstring)."""

    viewer: Any
    ui: Any
    marking: int

    def _init_correct(self) -> None:
        self._shown: weakref.WeakKeyDictionary[Labels, dict[Index, MaskState]] = weakref.WeakKeyDictionary()
        self._watched: weakref.WeakSet[Labels] = weakref.WeakSet()
        self._mark_timer = QTimer(self)  # napari announces a stroke before it writes it: look on the next turn
        self._mark_timer.setSingleShot(True)
        self._mark_timer.setInterval(0)
        self._mark_timer.timeout.connect(self.update_mark_button)
        self.ui.mark.clicked.connect(self.mark_corrected)
        self.viewer.layers.selection.events.active.connect(self.update_mark_button)

    def remember_shown(self, labels: Labels, states: dict[Index, MaskState]) -> None:
        """What the widget showed in planes of ``labels`` (replacing what it showed there before)."""
        self._shown.setdefault(labels, {}).update(states)
        if labels not in self._watched:
            self._watched.add(labels)
            labels.events.paint.connect(lambda *_: self._mark_timer.start())  # the brush, the eraser, the fill
        self.update_mark_button()

    def shown_state(self, labels: Labels, index: Index) -> MaskState | None:
        return self._shown.get(labels, {}).get(index)

    def edited(self, labels: Labels, index: Index) -> bool:
        """Whether the person changed plane ``index`` of ``labels`` since the widget showed it (a plane the
        widget never filled counts as edited once anything is painted on it)."""
        state = self.shown_state(labels, index)
        plane = np.asarray(labels.data[index])
        return state.edited(plane) if state is not None else bool(plane.any())

    def unmarked_edits(self) -> int:
        """How many masks (planes) the person edited and has not marked corrected: series drafts, the series mask
        shown, and planes of other mask layers."""
        ids, n = set(self.drafts), 0
        for labels, states in list(self._shown.items()):
            if labels not in self.viewer.layers:
                continue
            edited = sum(s.edited(np.asarray(labels.data[i])) for i, s in states.items())
            if meta(labels).get("series"):
                ids.update(meta(labels).get("image_ids") or [] if edited else [])
            else:
                n += edited
        return n + len(ids)

    def update_mark_button(self, *_: Any) -> None:
        """"Accept as is" while the selected mask is the prediction (or the stored label) the widget showed, else
        "Mark corrected"."""
        labels = self.viewer.layers.selection.active
        image = source_image(self.viewer, labels, None) if isinstance(labels, Labels) else None
        untouched = False
        if image is not None and labels in self._shown and tuple(labels.data.shape[:image.ndim]) == \
                tuple(image.data.shape[:image.ndim]):  # fmt: skip
            indices = plane_indices(image, self.viewer.dims.point, self.all_slices)
            untouched = all(_proposed(self.shown_state(labels, i)) and not self.edited(labels, i) for i in indices)
        self.ui.mark.setText(ACCEPT if untouched else MARK)

    def mark_corrected(self) -> None:
        """Store the selected mask (current slice or all slices) as human labels in the project. The masks are
        taken now; they are written on the worker thread, after every task queued before and before every task
        queued after (a Retrain clicked next exports them)."""
        try:
            project, image, labels, planes, masks, shown = self._correction()
        except UserError as err:
            self.say(str(err), warn=True)
            return
        author = self.ui.author.text().strip()
        edited = [s is None or s.edited(m) for s, m in zip(shown, masks)]

        def done(ids: list[str]) -> None:
            self.marking -= 1
            viewer = self._viewer()
            if viewer is not None and image in viewer.layers:
                remember_image_ids(project, image, planes.indices, ids)
                self.remember_shown(labels, {i: MaskState(m.astype(np.uint8), {"what": "human"})
                                             for i, m in zip(planes.indices, masks)})
            for image_id in ids:
                self.drafts.pop(image_id, None)
            self.refresh_images()
            self.say(_marked_message(len(ids), sum(edited), shown, masks, author))
            self.marked.emit(ids)

        def failed(err: BaseException) -> None:
            self.marking -= 1
            self.report_error("Saving the human labels", err)

        note = f"corrected in napari ('{labels.name}')" if any(edited) else "accepted in napari as shown"
        if self.jobs.submit(_work.mark_planes, project, planes, masks, author, note, shown, on_done=done,
                            on_error=failed, what="Saving the human labels", cancellable=False):
            self.marking += 1
            self.say(f"Saving the human labels of {plural(len(masks), 'image')}…")

    def _correction(self) -> tuple[Any, Image, Labels, Planes, list[np.ndarray], list[MaskState | None]]:
        """What Mark corrected stores: (project, image layer, mask layer, its planes, masks, what was shown of
        each plane); UserError if the selection cannot be stored."""
        if self.saving:
            raise UserError("Still saving the project into its new folder: mark the mask in a moment.")
        labels = self.viewer.layers.selection.active
        if not isinstance(labels, Labels):
            raise UserError("Select the mask you corrected (the active layer is not a Labels layer).")
        image = source_image(self.viewer, labels, self._last_image)
        if image is None:
            raise UserError(f"Cannot tell which image '{labels.name}' belongs to: segment the image first.")
        check_labels_shape(labels, image)
        if not self.ui.author.text().strip():
            raise UserError("Type your name in 'Annotator': a human label needs the person who corrected it.")
        project = self.project_for(labels)
        planes = layer_planes(project, image, plane_indices(image, self.viewer.dims.point, self.all_slices))
        masks = [np.asarray(labels.data[index]) != 0 for index in planes.indices]  # a copy: painting may go on
        shown = [self.shown_state(labels, index) for index in planes.indices]
        return project, image, labels, planes, masks, shown


def _proposed(state: MaskState | None) -> bool:
    """Whether the widget showed a mask to accept (a prediction or a stored label), not an empty new one."""
    return state is not None and state.provenance.get("what") in ("prediction", "human")


def _marked_message(n: int, n_edited: int, shown: list, masks: list, author: str) -> str:
    if n_edited == 0:
        what = f"Accepted {plural(n, 'image')} as shown"
    else:
        changed = [float(np.mean((s.mask != 0) != m)) for s, m in zip(shown, masks) if s is not None]
        share = f"; you changed {100 * np.mean(changed):.1f}% of the pixels" if changed else ""
        kept = f", {plural(n - n_edited, 'image')} accepted as shown" if n_edited < n else ""
        what = f"Marked {plural(n, 'image')} as corrected ({n_edited} edited{kept}{share})"
    return f"{what}, by {author}: human labels saved in the project."
