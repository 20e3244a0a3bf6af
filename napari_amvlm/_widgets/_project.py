"""Project actions of the AMVLM widget: a project is made on first use (in a temporary folder until saved), and
saved to / opened from a folder (on the worker thread: the viewer never waits for the disk). Its images are
annotated as a series (:mod:`._series`).

A mixin of :class:`._main.AMVLMWidget` (it uses the widget's ``viewer``, ``ui``, ``model``, ``say`` ...).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog

from ..project import Project, ProjectError, Status
from ..project.transfer import FilesExist
from ..training.loop import corrected_since_last_round, loop_history
from ..training.round_models import latest_round_model
from . import _work
from ._jobs import reason
from ._layers import KEY, UserError, meta, plural
from ._loop_plot import summary

READ_WAIT_S = 0.02  # how long the GUI thread waits to read the project while the worker thread writes to it
READ_RETRY_MS = 100  # then it tries again this much later (and the event loop runs meanwhile)
EXPORTS = {"png": "PNG files", "tif": "TIFF files", "beside": "DICOM-SEG / NIfTI files"}
CLINICAL_FILES = "DICOM or NIfTI (*.dcm *.dicom *.nii *.nii.gz);;All files (*)"


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
        where = "unsaved, in a temporary folder: use 'Save project as…' to keep it" if self._scratch else \
            f"in {p.root.name}"
        with p.reading(READ_WAIT_S) as consistent:  # (the worker thread may be writing)
            if not consistent:
                QTimer.singleShot(READ_RETRY_MS, self._show_project)
                return
            counts, n, rounds = p.counts(), len(p), len(p.rounds())
            history, pending = loop_history(p), corrected_since_last_round(p)
        self.ui.project_info.setText(f"{plural(n, 'image')}, {counts[Status.CORRECTED]} corrected, "
                                     f"{plural(rounds, 'round')}: {p.name} ({where})")
        self.ui.project_info.setToolTip(str(p.root))
        self.ui.loop_plot.set_rows(history)
        self.ui.loop_info.setText(summary(history, pending))
        self.ui.loop_info.setVisible(bool(history) or pending[0] > 0)  # (no room taken before there is news)

    def _browse_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open an AMVLM project folder")
        if folder:
            self.open_project(folder)

    def _browse_save_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the project into a new (empty) folder")
        if folder:
            self.save_project_as(folder)

    def open_project(self, folder: str | Path) -> None:
        """Open a project (read and checked on the worker thread), list its images, show the first one not
        corrected yet, and use its latest round's model."""
        if self.runner.busy:
            self.say("A training round is running on the current project: wait for it or cancel it first.", True)
            return

        def opened(project: Project) -> None:
            self.project, self._scratch, self.current = project, False, None
            self.drafts.clear()
            self.refresh_images()
            todo = [i for i in self.table.ids() if project.status(i) is not Status.CORRECTED]
            first = (todo or self.table.ids() or [None])[0]
            trained = latest_round_model(project)
            if trained is not None:
                self.load_model(trained, round=len(project.rounds()))
            self.go_to_image(first)
            self.say(f"Opened project '{project.name}' ({plural(len(project), 'image')}).")

        def failed(err: BaseException) -> None:
            self.busy = False
            self.say(f"Cannot open the project: {reason('Opening the project', err)}", warn=True)

        self.busy = self.jobs.submit(_work.open_project, folder, on_done=lambda p: self._opened(opened, p),
                                     on_error=failed, what="Opening the project")

    def save_project_as(self, folder: str | Path) -> None:
        """Copy the project (images, labels, prompts, model versions) to ``folder`` on the worker thread (after
        every correction queued before), and continue there."""
        if self.runner.busy:
            self.say("A training round is running: wait for it or cancel it before saving elsewhere.", True)
            return
        dest = Path(folder)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            self.say(f"Choose a new or empty folder: {dest} is not empty.", warn=True)
            return
        if self.project is None:
            self.project, self._scratch = Project.create(dest), False
            self._show_project()
            self.say(f"Project saved in {dest}.")
            return

        def saved(project: Project) -> None:
            old = self.project.root
            self.project, self._scratch = project, False
            self._relocate(old, dest)
            self._show_project()
            self.say(f"Project saved in {dest}.")

        self.saving = True
        self._run(_work.copy_project, lambda p: self._saved(saved, p), self.project, dest, what="Saving the project")
        if not self.busy:
            self.saving = False

    def _opened(self, then: Any, project: Project) -> None:
        self.busy = False
        then(project)

    def _saved(self, then: Any, project: Project) -> None:
        self.saving = False
        then(project)

    def _relocate(self, old: Path, new: Path) -> None:
        """Point layers (and a model trained in the project) at the project's new folder."""
        for layer in self.viewer.layers:
            m = meta(layer)
            if m.get("project") == str(old):
                layer.metadata = {**layer.metadata, KEY: {**m, "project": str(new)}}
        if self.model is not None and self.model.folder.is_relative_to(old):
            self.model.folder = new / self.model.folder.relative_to(old)
            self._show_folder(self.model.folder)

    # ---------------------------------------------------------------------------------------------- export
    def _browse_export(self, fmt: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Write the corrected masks as {EXPORTS[fmt]} into a folder")
        if folder:
            self.export_masks(folder, fmt)

    def _browse_export_beside(self, series: bool) -> None:
        if series:
            chosen = QFileDialog.getExistingDirectory(self, "The DICOM series folder the images were added from")
            sources = [chosen] if chosen else []
        else:
            sources, _ = QFileDialog.getOpenFileNames(self, "The DICOM or NIfTI files the images were added from", "",
                                                      CLINICAL_FILES)
        if not sources:
            return
        folder = QFileDialog.getExistingDirectory(self, "Write their masks (DICOM-SEG, NIfTI) into a folder")
        if folder:
            self.export_masks(folder, "beside", sources)

    def export_masks(self, folder: str | Path, fmt: str = "png", sources: list[str] | None = None) -> None:
        """Write the project's corrected masks into ``folder`` on the worker thread, after every correction queued
        before: ``fmt`` "png" or "tif" (a file per image, named after it), or "beside" (a DICOM-SEG or NIfTI file
        per DICOM or NIfTI file or series folder in ``sources``, which the person names: a path recorded in a
        project is never opened). Existing files are never overwritten."""
        if self.project is None:
            self.say("No project yet: segment and correct an image first.", warn=True)
            return
        what, unmarked = f"Exporting the masks as {EXPORTS[fmt]}", self.unmarked_edits()
        later = f" {plural(unmarked, 'edited mask')} not marked corrected {'is' if unmarked == 1 else 'are'} " \
                "not in it: mark them first." if unmarked else ""

        def done(paths: list[Path]) -> None:
            self.busy = False
            if not paths:
                self.say("No corrected masks to export yet: correct a mask and press Mark corrected (or Accept "
                         "as is) first." + later, warn=True)
                return
            self.say(f"Wrote {plural(len(paths), 'mask file')} ({EXPORTS[fmt]}) into {Path(folder).name}.{later}")
            self.ui.status.setToolTip(str(Path(folder)))

        def failed(err: BaseException) -> None:
            self.busy = False
            if isinstance(err, FilesExist):
                self.say(f"{Path(folder).name} already holds {len(err.clashes)} of these mask files "
                         f"({err.clashes[0].name}): choose another folder. Nothing was written.", warn=True)
            else:
                self.say(f"{what} failed: {reason(what, err)} Nothing was written.", warn=True)

        self.busy = self.jobs.submit(_work.export_masks, self.project, folder, fmt, sources, on_done=done,
                                     on_error=failed, what=what)
