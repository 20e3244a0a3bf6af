"""The controls of the AMVLM dock widget, laid out in four groups (model, prompt, project and its images,
training), each with a tooltip that says what it does.

Only builds widgets; the behaviour lives in :mod:`._main`.
"""

from __future__ import annotations

import getpass
from typing import Any

from qtpy.QtCore import QSize, Qt
from qtpy.QtGui import QTextLayout, QTextOption
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel, QElidingLineEdit

from ..device import available_devices
from ..inference.postprocess import Cleanup
from ..inference.prompts import SIDE_HELP
from ._table import ImageTable
from ..training.rounds import RetrainSettings
from ._loop_plot import LoopPlot

STACK_CHOICES = ("current slice", "all slices")
# What left/right in the prompt mean: (convention, what the box shows). The first is the default.
SIDE_CHOICES = (("image", "image's left/right (as displayed)"), ("patient", "patient's left/right (radiological)"))
PLACEHOLDER = {"image": "e.g. lower left lung (left = the image's left)",
               "patient": "e.g. lower left lung (left = the patient's left)"}
STATUS_LINES = 2  # the status line's most lines (a longer message is elided; the whole of it in the tooltip)
WARNING_STYLE = "QLabel { color: #e8a33d; }"  # a problem the user should read before trusting the mask
MARK = "Mark corrected"  # the button's text once the mask was edited...
ACCEPT = "Accept as is"  # ...and while it is still what the model (or an earlier label) gave


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
    """A one-line label that elides its text (in the middle, or where ``elide`` says) and shows all of it in its
    tooltip."""

    def __init__(self, text: str = "", elide: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle) -> None:
        super().__init__()
        self.setElideMode(elide)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setToolTip(_wrapped(text) if text else "")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        """As narrow as the dock likes: a long text is elided, it never widens the dock."""
        return QSize(self.minimumSizeHint().width(), super().sizeHint().height())


class StatusLine(QLabel):
    """The dock's status line: wrapped to at most STATUS_LINES lines, the last one elided, so a long message
    never pushes the image list down; the whole message is in the tooltip when it is cut. ``text()`` is the
    whole message. (The label is given its lines, each fitting its width: it never wraps or widens itself.)"""

    def __init__(self) -> None:
        super().__init__()
        self._text = ""
        self.setTextFormat(Qt.TextFormat.PlainText)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._text = text
        self._fit()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(self.minimumSizeHint().width(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(self.fontMetrics().horizontalAdvance("…"), super().minimumSizeHint().height())

    def _fit(self) -> None:
        width = max(1, self.contentsRect().width())
        wrap = QTextOption()
        wrap.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)  # (a long path too)
        lines = []
        for paragraph in self._text.splitlines():
            layout = QTextLayout(paragraph, self.font())
            layout.setTextOption(wrap)
            layout.beginLayout()
            while (line := layout.createLine()).isValid():
                line.setLineWidth(width)
                lines.append(paragraph[line.textStart(): line.textStart() + line.textLength()].strip())
            layout.endLayout()
        kept = lines
        if len(lines) > STATUS_LINES:  # the last line shown holds the rest, elided
            kept = [*lines[: STATUS_LINES - 1], " ".join(lines[STATUS_LINES - 1:])]
        shown = [self.fontMetrics().elidedText(ln, Qt.TextElideMode.ElideRight, width) for ln in kept]
        if "\n".join(shown) != QLabel.text(self):
            super().setText("\n".join(shown))
        self.setToolTip(_wrapped(self._text) if len(lines) > STATUS_LINES or shown != kept else "")


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


def _warning() -> QLabel:
    """A word-wrapped warning line, hidden until it has something to say."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet(WARNING_STYLE)
    label.setVisible(False)
    return label


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
        self.fit_warning = _warning()
        self.switch_model = _tip(QPushButton("Use the model that fits"), "Load the bundled model made for images "
                                                                         "like this one.")
        self.switch_model.setVisible(False)
        box = QGroupBox("Model")
        form = QFormLayout(box)
        # (the device in the folder's row: the image list keeps its height at 1280x800)
        form.addRow("Folder", _row(self.model_path, self.browse_model, self.device))
        form.addRow(self.model_info)
        form.addRow(self.fit_warning)
        form.addRow(self.switch_model)
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
        self.prompt_warning = _warning()
        self.mark = _tip(QPushButton(MARK), "Save the selected mask as the human label of its image: 'Accept as "
                                              "is' while it is what the model gave, 'Mark corrected' once you "
                                              "fixed it with the brush and eraser. The project records how much "
                                              "you changed.")
        box = QGroupBox("Segment and correct")
        form = QFormLayout(box)
        form.addRow("Prompt", _row(self.prompt, self.segment))
        form.addRow(self.prompt_warning)
        form.addRow("Left/right", self.sides)
        form.addRow("Stacks", _row(self.stack, self.cleanup))
        form.addRow("Annotator", _row(self.author, self.mark))
        outer.addWidget(box)

        self.project_info = ElidedText("no project yet (one is made when you segment or add images)")
        self.open_project = _tip(QPushButton("Open project…"), "Open a project folder: its images, labels and "
                                                               "latest trained model.")
        self.save_project = _tip(QPushButton("Save project as…"), "Copy the project into a new, empty folder and "
                                                                  "keep working there.")
        self.add = _tip(QPushButton("Add"), "Add image files, or every image of a folder, to the project; the first "
                                            "one added is shown.")
        menu = QMenu(self.add)
        self.add_images = menu.addAction("Image files…")
        self.add_folder = menu.addAction("A folder of images…")
        self.add.setMenu(menu)
        self.export = _tip(QPushButton("Export"), "Write the corrected masks (the human labels the project holds) "
                                                  "into a folder: as PNG or TIFF files named after their images, or "
                                                  "as a DICOM-SEG or NIfTI file beside each DICOM or NIfTI source. "
                                                  "Existing files are never overwritten.")
        menu = QMenu(self.export)
        self.export_png = menu.addAction("Corrected masks as PNG…")
        self.export_tif = menu.addAction("Corrected masks as TIFF…")
        self.export_beside_files = menu.addAction("Beside their DICOM or NIfTI files…")
        self.export_beside_series = menu.addAction("Beside their DICOM series folder…")
        self.export.setMenu(menu)
        # the image shown: its name (elided on the right: its start tells images apart), then its place in the
        # list and its status, never elided
        self.current = ElidedText("no image shown yet: segment one, or pick one below", Qt.TextElideMode.ElideRight)
        self.position = _tip(QLabel(""), "The image's place in the list (in its order) and its status.")
        self.position.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.show_uncertainty = _tip(QCheckBox("Uncertainty"), "Show where the model is least sure of the image in "
                                                               "view (its latest prediction): correct there first.")
        self.previous = _tip(QPushButton("◀ Previous"), "Show the image above in the list.")
        self.next = _tip(QPushButton("Next ▶"), "Show the image below in the list.")
        self.next_uncertain = _tip(QPushButton("Most uncertain"),
                                   "Show the uncorrected image the model is least sure about: correct it first.")
        self.images = _tip(ImageTable(), "The project's images: click a column to sort; double-click an image (or "
                                         "press Enter) to show it. Previous and Next follow this order.")
        box = QGroupBox("Project")
        lay = QVBoxLayout(box)
        shown = _row(self.current, self.position, self.show_uncertainty)
        shown.layout().setStretch(0, 1)  # the name takes the width left
        for w in (self.project_info, _row(self.open_project, self.save_project, self.add, self.export), shown,
                  _row(self.previous, self.next, self.next_uncertain), self.images):
            lay.addWidget(w)
        outer.addWidget(box, 1)  # the list takes the height left

        self.epochs = _tip(QSpinBox(), "Passes over the corrected images in one Retrain round.")
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(RetrainSettings().epochs)
        self.retrain = _tip(QPushButton("Retrain"), "Fine-tune the model on the corrected images (and the others "
                                                    "as unlabeled data) in a separate process; the viewer stays "
                                                    "usable. A few corrected images are held back: the new weights "
                                                    "are used only if they do at least as well on them.")
        self.cancel = _tip(QPushButton("Cancel"), "Stop the running training round; the current weights stay.")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()  # a round's steps; blank (disabled) between rounds
        # never hidden: showing a widget relayouts the dock and repaints the whole window at once, canvas included
        # (tens of ms, more on a busy machine); a disabled bar is drawn as empty space instead
        self.progress.setStyleSheet("QProgressBar:disabled { border: none; background: transparent; color: "
                                    "transparent; } QProgressBar::chunk:disabled { background: transparent; }")
        self.progress.setEnabled(False)
        self.progress.setTextVisible(True)
        self.loop_plot = LoopPlot()  # per round: held-back Dice of the weights in use, share of masks changed
        self.loop_plot.set_rows([])
        self.loop_info = _tip(QLabel("No Retrain round yet."), "How the Retrain rounds did on the corrected images "
                              "they held back, and how much of the model's masks you still change.")
        self.loop_info.setVisible(False)
        self.loop_info.setWordWrap(True)
        box = QGroupBox("Training")
        form = QFormLayout(box)
        form.addRow("Epochs", _row(self.epochs, self.retrain, self.cancel))  # (one row, like Folder)
        form.addRow(self.progress)
        form.addRow(self.loop_plot)
        form.addRow(self.loop_info)
        outer.addWidget(box)

        self.status = StatusLine()
        outer.addWidget(self.status)
        self.show_sides()

    @property
    def side_convention(self) -> str:
        """"image" or "patient": what left/right in the prompt mean."""
        return str(self.sides.currentData())

    def show_sides(self) -> None:
        """State the side convention in the prompt box's placeholder."""
        self.prompt.setPlaceholderText(PLACEHOLDER[self.side_convention])
