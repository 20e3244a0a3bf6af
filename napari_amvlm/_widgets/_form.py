"""The controls of the AMVLM dock widget, laid out in four groups (model, prompt, project, training).

Only builds widgets; the behaviour lives in :mod:`._main`.
"""

from __future__ import annotations

import getpass

from qtpy.QtWidgets import (
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

from ..device import available_devices

STACK_CHOICES = ("current slice", "all slices")


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        return ""


class Form:
    """Every control of the widget, as attributes."""

    def __init__(self, parent: QWidget) -> None:
        outer = QVBoxLayout(parent)
        self.model_path = QLineEdit()
        self.model_path.setReadOnly(True)
        self.browse_model = QPushButton("Browse…")
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.model_info = QLabel("no model loaded")
        self.model_info.setWordWrap(True)
        box = QGroupBox("Model")
        form = QFormLayout(box)
        form.addRow("Folder", _row(self.model_path, self.browse_model))
        form.addRow("Device", self.device)
        form.addRow(self.model_info)
        outer.addWidget(box)

        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("e.g. unilateral pulmonary infection, lower left lung")
        self.segment = QPushButton("Segment")
        self.stack = QComboBox()
        self.stack.addItems(STACK_CHOICES)
        self.author = QLineEdit(_user())
        self.mark = QPushButton("Mark corrected")
        box = QGroupBox("Segment and correct")
        form = QFormLayout(box)
        form.addRow("Prompt", _row(self.prompt, self.segment))
        form.addRow("Stacks", self.stack)
        form.addRow("Annotator", _row(self.author, self.mark))
        outer.addWidget(box)

        self.project_info = QLabel("no project yet (one is made when you segment)")
        self.project_info.setWordWrap(True)
        self.open_project = QPushButton("Open project…")
        self.save_project = QPushButton("Save project as…")
        self.images = QListWidget()
        self.next_uncertain = QPushButton("Next most uncertain image")
        box = QGroupBox("Project")
        lay = QVBoxLayout(box)
        for w in (self.project_info, _row(self.open_project, self.save_project), self.images, self.next_uncertain):
            lay.addWidget(w)
        outer.addWidget(box)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(20)
        self.retrain = QPushButton("Retrain")
        self.cancel = QPushButton("Cancel")
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
