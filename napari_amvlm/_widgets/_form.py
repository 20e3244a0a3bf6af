"""The controls of the AMVLM dock widget, laid out in four groups (model, prompt, project, training), each with a
tooltip that says what it does.

Only builds widgets; the behaviour lives in :mod:`._main`.
"""

from __future__ import annotations

import getpass

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel, QElidingLineEdit

from ..device import available_devices
from ..inference.postprocess import Cleanup
from ..inference.prompts import SIDE_HELP

STACK_CHOICES = ("current slice", "all slices")
# What left/right in the prompt mean: (convention, what the box shows). The first is the default.
SIDE_CHOICES = (("image", "image's left/right (as displayed)"), ("patient", "patient's left/right (radiological)"))
PLACEHOLDER = {"image": "e.g. lower left lung (left = the image's left)",
               "patient": "e.g. lower left lung (left = the patient's left)"}


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box


def _tip(widget: QWidget, text: str) -> QWidget:
    widget.setToolTip(text)
    return widget


def _wrapped(text: str) -> str:
    """A tooltip that wraps (Qt wraps rich text only) and shows ``text`` literally."""
    from html import escape

    return f"<p style='white-space: pre-wrap'>{escape(text, quote=False)}</p>"


class ElidedText(QElidingLabel):
    """A one-line label that elides its text in the middle and shows all of it in its tooltip."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.setElideMode(Qt.TextElideMode.ElideMiddle)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setToolTip(_wrapped(text) if text else "")


class PromptEdit(QElidingLineEdit):
    """The prompt box: elided in the middle while not being edited, the whole prompt in its tooltip."""

    def __init__(self) -> None:
        super().__init__()
        self.setElideMode(Qt.TextElideMode.ElideMiddle)
        self.textEdited.connect(self._show_tip)
        self._show_tip()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._show_tip()

    def _show_tip(self, *_: object) -> None:
        full = self.text()
        self.setToolTip(_wrapped(full) if full.strip() else "Describe what to segment and press Enter.")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        return ""


class Form:
    """Every control of the widget, as attributes."""

    def __init__(self, parent: QWidget) -> None:
        outer = QVBoxLayout(parent)
        self.model_path = ElidedText()
        self.browse_model = _tip(QPushButton("Browse…"), "Choose a model folder (one with segmenter.json).")
        self.device = _tip(QComboBox(), "Where the model runs: cpu, or a GPU (cuda, mps) when there is one. "
                                        "Changing it reloads the model.")
        self.device.addItems(available_devices())
        self.model_info = QLabel("no model loaded")
        self.model_info.setWordWrap(True)
        box = QGroupBox("Model")
        form = QFormLayout(box)
        form.addRow("Folder", _row(self.model_path, self.browse_model))
        form.addRow("Device", self.device)
        form.addRow(self.model_info)
        outer.addWidget(box)

        self.prompt = PromptEdit()
        self.segment = _tip(QPushButton("Segment"), "Segment the selected image for the prompt (or press Enter in "
                                                    "the prompt box). The mask appears as a Labels layer.")
        self.sides = QComboBox()
        for key, label in SIDE_CHOICES:
            self.sides.addItem(label, key)
        self.sides.setToolTip(_wrapped("What left and right in the prompt mean.\n" + "\n".join(
            f"{label}: {SIDE_HELP[key]}." for key, label in SIDE_CHOICES)))
        self.cleanup = _tip(QCheckBox("Clean up masks"), f"On: {Cleanup().describe()} (chest X-rays). Turn it off "
                                                        "for images whose targets are tiny, e.g. nuclei.")
        self.cleanup.setChecked(True)
        self.stack = _tip(QComboBox(), "For stacks: segment only the slice shown, or every slice.")
        self.stack.addItems(STACK_CHOICES)
        self.author = _tip(QLineEdit(_user()), "Your name: every corrected mask records who corrected it.")
        self.mark = _tip(QPushButton("Mark corrected"), "Save the selected Labels layer (after your brush and "
                                                        "eraser fixes) as the human label of its image.")
        box = QGroupBox("Segment and correct")
        form = QFormLayout(box)
        form.addRow("Prompt", _row(self.prompt, self.segment))
        form.addRow("Left/right", self.sides)
        form.addRow("", self.cleanup)
        form.addRow("Stacks", self.stack)
        form.addRow("Annotator", _row(self.author, self.mark))
        outer.addWidget(box)

        self.project_info = QLabel("no project yet (one is made when you segment)")
        self.project_info.setWordWrap(True)
        self.open_project = _tip(QPushButton("Open project…"), "Open a project folder: its images, labels and "
                                                               "latest trained model.")
        self.save_project = _tip(QPushButton("Save project as…"), "Copy the project into a new, empty folder and "
                                                                  "keep working there.")
        self.images = _tip(QListWidget(), "The project's images with their status; double-click one to show it.")
        self.next_uncertain = _tip(QPushButton("Next most uncertain image"),
                                   "Show the uncorrected image the model is least sure about: correct it first.")
        box = QGroupBox("Project")
        lay = QVBoxLayout(box)
        for w in (self.project_info, _row(self.open_project, self.save_project), self.images, self.next_uncertain):
            lay.addWidget(w)
        outer.addWidget(box)

        self.epochs = _tip(QSpinBox(), "Passes over the corrected images in one Retrain round.")
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(20)
        self.retrain = _tip(QPushButton("Retrain"), "Train the model further on the corrected images (and the "
                                                    "others as unlabeled data) in a separate process; the viewer "
                                                    "stays usable.")
        self.cancel = _tip(QPushButton("Cancel"), "Stop the running training round; the current weights stay.")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()  # a round's steps; blank (disabled) between rounds
        # never hidden: showing a widget relayouts the dock and repaints the whole window at once, canvas included
        # (tens of ms, more on a busy machine); a disabled bar is drawn as empty space instead
        self.progress.setStyleSheet("QProgressBar:disabled { border: none; background: transparent; color: "
                                    "transparent; } QProgressBar::chunk:disabled { background: transparent; }")
        self.progress.setEnabled(False)
        self.progress.setTextVisible(True)
        box = QGroupBox("Training")
        form = QFormLayout(box)
        form.addRow("Epochs", self.epochs)
        form.addRow(_row(self.retrain, self.cancel))
        form.addRow(self.progress)
        outer.addWidget(box)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        outer.addStretch(1)
        self.show_sides()

    @property
    def side_convention(self) -> str:
        """"image" or "patient": what left/right in the prompt mean."""
        return str(self.sides.currentData())

    def show_sides(self) -> None:
        """State the side convention in the prompt box's placeholder."""
        self.prompt.setPlaceholderText(PLACEHOLDER[self.side_convention])
