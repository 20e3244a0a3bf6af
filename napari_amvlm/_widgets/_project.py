"""Project actions of the AMVLM widget: a project is made on first use (in a temporary folder until saved),
saved to / opened from a folder, its images listed by status, and the next most uncertain image shown.

A mixin of :class:`._main.AMVLMWidget` (it uses the widget's ``viewer``, ``ui``, ``model``, ``say`` ...).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from napari.layers import Image
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QListWidgetItem

from .._sample_data import TEXT_KEY
from ..inference.prompts import to_model_sides
from ..project import Project, ProjectError, Status
from ..training.round_models import latest_round_model
from . import _work
from ._layers import KEY, UserError, lead_shape, meta, plural

ID_ROLE = 256  # Qt.ItemDataRole.UserRole
SAVE_WAIT_S = 5.0  # how long "Save project as" waits for the worker thread to store earlier work
READ_WAIT_S = 0.02  # how long the GUI thread waits to read the project while the worker thread writes to it
READ_RETRY_MS = 100  # then it tries again this much later (and the event loop runs meanwhile)


class ProjectActions:
    """Project-related behaviour of the widget."""

    viewer: Any
    ui: Any
    model: Any
    project: Project | None
    uncertainty: dict[str, float]
    jobs: Any
    _scratch: bool = False

    # ------------------------------------------------------------------------------ make / open / save
    def ensure_project(self) -> Project:
        """The current project; a new one in a temporary folder if there is none yet."""
        if self.project is None:
            self.project = Project.create(Path(tempfile.mkdtemp(prefix="amvlm-project-")) / "project",
                                          name="unsaved AMVLM project")
            self._scratch = True
            self._show_project()
        return self.project

    def project_for(self, layer: Any) -> Project:
        """The project a layer belongs to (switching to it when it came from File > Open), else the current."""
        folder = meta(layer).get("project")
        if folder and (self.project is None or Path(folder) != self.project.root) and Path(folder).is_dir():
            try:
                self.project, self._scratch = Project.open(folder), False
            except (ProjectError, FileNotFoundError) as err:
                raise UserError(f"the project of '{layer.name}' cannot be opened: {err}") from err
            self._show_project()
        return self.ensure_project()

    def _show_project(self) -> None:
        p = self.project
        if p is None:
            return
        where = "unsaved, in a temporary folder: use 'Save project as…' to keep it" if self._scratch else str(p.root)
        with p.reading(READ_WAIT_S) as consistent:  # (the worker thread may be writing)
            if not consistent:
                QTimer.singleShot(READ_RETRY_MS, self._show_project)
                return
            counts, n, rounds = p.counts(), len(p), len(p.rounds())
        self.ui.project_info.setText(f"{p.name}: {plural(n, 'image')}, {counts[Status.CORRECTED]} corrected, "
                                     f"{plural(rounds, 'round')} ({where})")

    def _browse_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open an AMVLM project folder")
        if folder:
            self.open_project(folder)

    def _browse_save_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the project into a new (empty) folder")
        if folder:
            self.save_project_as(folder)

    def open_project(self, folder: str | Path) -> None:
        """Open a project, show its images and labels (the reader's layers), and use its latest round's model."""
        if self.runner.busy:
            self.say("A training round is running on the current project: wait for it or cancel it first.", True)
            return
        try:
            project = Project.open(folder)
            if len(project):
                self.viewer.open(str(project.root), plugin="napari-amvlm")
        except (ValueError, OSError) as err:  # (napari wraps what its reader raised: say that instead)
            cause = err.__cause__ if isinstance(err.__cause__, (ValueError, OSError)) else err
            self.say(f"Cannot open the project: {cause}", warn=True)
            return
        self.project, self._scratch = project, False
        self._show_project()
        self.refresh_images()
        trained = latest_round_model(project)
        if trained is not None:
            self.load_model(trained, round=len(project.rounds()))
        self.say(f"Opened project {project.root} ({plural(len(project), 'image')}).")

    def save_project_as(self, folder: str | Path) -> None:
        """Copy the project (images, labels, prompts, model versions) to ``folder`` and continue there."""
        if self.runner.busy:
            self.say("A training round is running: wait for it or cancel it before saving elsewhere.", True)
            return
        dest = Path(folder)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            self.say(f"Choose a new or empty folder: {dest} is not empty.", warn=True)
            return
        if not self.jobs.wait_idle(SAVE_WAIT_S):  # the copy holds every correction marked before
            self.say("Still storing earlier work in the project: try 'Save project as…' again in a moment.", True)
            return
        if self.project is None:
            self.project, self._scratch = Project.create(dest), False
        else:
            old = self.project.root
            shutil.copytree(old, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".lock", ".*.tmp*"))
            (dest / ".lock").touch()
            self.project, self._scratch = Project.open(dest), False
            self._relocate(old, dest)
        self._show_project()
        self.say(f"Project saved in {dest}.")

    def _relocate(self, old: Path, new: Path) -> None:
        """Point layers (and a model trained in the project) at the project's new folder."""
        for layer in self.viewer.layers:
            m = meta(layer)
            if m.get("project") == str(old):
                layer.metadata = {**layer.metadata, KEY: {**m, "project": str(new)}}
        if self.model is not None and self.model.folder.is_relative_to(old):
            self.model.folder = new / self.model.folder.relative_to(old)
            self.ui.model_path.setText(str(self.model.folder))

    # ------------------------------------------------------------------------------ images by status
    def refresh_images(self) -> None:
        """List the project's images with their status (and uncertainty where known)."""
        self._show_project()
        box = self.ui.images
        rows = []
        p = self.project
        with p.reading(READ_WAIT_S) if p is not None else contextlib.nullcontext(True) as consistent:
            if not consistent:  # the worker thread is writing: list the images once it is done
                QTimer.singleShot(READ_RETRY_MS, self.refresh_images)
                return
            for rec in p.images() if p is not None else []:
                unc = self.uncertainty.get(rec.id)
                rows.append((rec.id, f"{rec.name}  [{p.status(rec.id).value}]"
                                     + (f"  uncertainty {unc:.3f}" if unc is not None else "")))
        items = [box.item(k) for k in range(box.count())]
        if [it.data(ID_ROLE) for it in items] == [i for i, _ in rows]:  # same images: change only what changed
            for item, (_, text) in zip(items, rows):
                if item.text() != text:
                    item.setText(text)
            return
        box.clear()
        for image_id, text in rows:
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, image_id)
            box.addItem(item)

    def next_most_uncertain(self) -> None:
        """Show the uncorrected image with the highest mean uncertainty (scoring unscored images first)."""
        if self.project is None or not len(self.project):
            self.say("No project images yet: segment an image or open a project first.", warn=True)
            return
        with self.project.reading():
            todo = [i for i in self.project.image_ids() if self.project.status(i) is not Status.CORRECTED]
        if not todo:
            self.say("Every image of the project is corrected.")
            return
        unscored = [i for i in todo if i not in self.uncertainty]
        if unscored and self.model is not None and not self.busy:
            self._run(_work.score_images, lambda s: self._pick_uncertain(todo, s), self.model, self.project,
                      unscored, self.ui.prompt.text(), self.sides, self.jobs.stop, what="Scoring images")
        else:
            self._pick_uncertain(todo, {})

    def _pick_uncertain(self, todo: list[str], scores: dict[str, float]) -> None:
        self.uncertainty.update(scores)
        scored = [i for i in todo if i in self.uncertainty]
        if not scored:
            self.say("No uncertainty known yet: segment an image first (or type a prompt).", warn=True)
            return
        best = max(scored, key=lambda i: self.uncertainty[i])
        self.refresh_images()
        self.go_to_image(best)
        self.say(f"Most uncertain uncorrected image: {self.project.image(best).name} "
                 f"(mean uncertainty {self.uncertainty[best]:.3f}).")

    def go_to_image(self, image_id: str | None) -> None:
        """Select the layer (and slice) showing a project image, adding it from the project if needed."""
        if not image_id or self.project is None or image_id not in self.project:
            return
        for layer in self.viewer.layers:
            ids = meta(layer).get("image_ids") or []
            if isinstance(layer, Image) and image_id in ids and meta(layer).get("project") == str(self.project.root):
                self._show_slice(layer, ids.index(image_id))
                break
        else:
            layer = self._add_project_image(image_id)
        self.viewer.layers.selection.active = layer
        prompts = self.project.prompts(image_id)
        if prompts:
            self.set_prompt(prompts[-1].text, prompts[-1].sides)

    def _show_slice(self, layer: Image, k: int) -> None:
        lead = lead_shape(layer)
        if not lead:
            return
        offset = self.viewer.dims.ndim - layer.ndim
        for axis, i in enumerate(np.unravel_index(k, lead)):
            self.viewer.dims.set_point(offset + axis, layer.translate[axis] + int(i) * layer.scale[axis])

    def _add_project_image(self, image_id: str) -> Image:
        rec = self.project.image(image_id)
        prompts = self.project.prompts(image_id)
        metadata = {KEY: {"project": str(self.project.root), "image_ids": [image_id]}}
        if prompts:  # the image's sentence, in the image's sides (as sample data has it)
            metadata[TEXT_KEY] = to_model_sides(prompts[-1].text, prompts[-1].sides)
        return self.viewer.add_image(np.asarray(self.project.read_image(image_id)[...]), name=rec.name,
                                     rgb=rec.rgb, metadata=metadata)
