"""Which way an image is read, and what left and right in a prompt mean on it (GUIDE §2.7).

The bundled chest X-ray model learned from frontal films shown the standard way: the patient's left on the image's
right, the head up. Its sentences name the *image's* sides. A prompt can be written in the image's convention (left:
the image's left) or the patient's (left: the patient's left lung, as a radiologist writes it).

When the file says which patient direction the image's rows and columns run (DICOM Patient Orientation or Image
Orientation (Patient), a NIfTI affine), a patient-convention prompt is read through it: the image is turned (a
mirror, a quarter turn, a flip: exactly, no resampling) into the standard view the model learned from, segmented
there, and the results are turned back. A mirrored or rotated film is then segmented as a standard one. Without such
tags, the patient convention assumes a standard frontal view, and says so. A prompt in the image's convention is
read as written, on the image as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.image import DIRECTION_NAMES, Image, Orientation
from .prompts import convert_sides, to_model_sides

STANDARD_ROWS = "L"  # along a row (to the image's right) lies the patient's left
STANDARD_COLUMNS = {"H": "F", "F": "F", "A": "P", "P": "P"}  # down a column: the feet (frontal), posterior (axial)


@dataclass(frozen=True)
class View:
    """How an image is shown to the model: transposed first, then flipped; and the side convention the prompt is
    then read in."""

    transpose: bool = False
    flip_rows: bool = False  # upside down (axis 0 reversed)
    flip_columns: bool = False  # mirrored (axis 1 reversed)
    sides: str = "image"  # the convention of the prompt once the image is in this view
    note: str = ""  # which convention was used and why, for people

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_columns)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` (H, W, ...) in this view."""
        if self.transpose:
            x = np.swapaxes(x, 0, 1)
        if self.flip_rows:
            x = x[::-1]
        if self.flip_columns:
            x = x[:, ::-1]
        return np.ascontiguousarray(x)

    def undo(self, x: np.ndarray) -> np.ndarray:
        """``x`` (h, w, ...) of this view, back in the image's own frame."""
        if self.flip_columns:
            x = x[:, ::-1]
        if self.flip_rows:
            x = x[::-1]
        if self.transpose:
            x = np.swapaxes(x, 0, 1)
        return np.ascontiguousarray(x)

    def image(self, image: Image) -> Image:
        """``image`` in this view (itself when the view changes nothing)."""
        if self.identity:
            return image
        spacing = None
        if image.spacing is not None:
            spacing = image.spacing[::-1] if self.transpose else image.spacing
        return Image(self.apply(image.pixels), spacing, None, image.source)


def _describe(o: Orientation) -> str:
    return (f"the file's {o.source} says the image's rows run toward the patient's {DIRECTION_NAMES[o.rows]} and "
            f"its columns toward the {DIRECTION_NAMES[o.columns]}")


def read_sides(orientation: Orientation | None, sides: str) -> View:
    """The view and side convention for a prompt written in ``sides`` ("image" or "patient") on an image of that
    ``orientation`` (None: the file does not say)."""
    if sides == "image":
        return View(sides="image", note="left/right: the image's sides as displayed")
    if orientation is None:
        return View(sides="patient", note="left/right: the patient's, assuming a standard frontal view (the "
                                          "patient's left on the image's right): the image does not say how it "
                                          "is oriented")
    across, down = orientation.rows, orientation.columns
    transpose = across not in "LR"
    if transpose:
        across, down = down, across
    if across not in "LR":
        return View(sides="image", note=f"left/right: the image's sides, because {_describe(orientation)}: the "
                                        "patient's left and right do not run across this image")
    view = View(transpose=transpose, flip_rows=down != STANDARD_COLUMNS[down], flip_columns=across != STANDARD_ROWS,
                sides="patient")
    how = "as it is" if view.identity else "turned into the standard view (patient's left on the image's right)"
    note = f"left/right: the patient's, read from the file: {_describe(orientation)}; segmented {how}"
    return View(view.transpose, view.flip_rows, view.flip_columns, "patient", note)


def recorded_prompt(text: str, sides: str, orientation: Orientation | None) -> tuple[str, str]:
    """``(text, sides)`` to record with an image's pixels, which keep no orientation: a patient-convention prompt
    on an image whose file says how the patient lies is rewritten into the image's own sides as displayed (on a
    mirrored film the patient's left is the image's left), so that a Retrain round or a later prompt reads it right
    without the file. Otherwise (no orientation, the image's convention, or left/right running down a quarter-turned
    image, which image-side words cannot say) it is recorded as written."""
    if sides != "patient" or orientation is None:
        return text, sides
    view = read_sides(orientation, sides)
    if view.sides == "image":  # left/right do not run across the image: it was read in the image's sides
        return text, "image"
    if view.transpose:
        return text, sides
    # standard view: the patient's left is the image's right (rewrite); mirrored across: the image's left (as is)
    return (text if view.flip_columns else to_model_sides(text, "patient")), "image"


def patient_prompt(text: str, sides: str, orientation: Orientation | None) -> tuple[str, str]:
    """``(text, sides)`` of a recorded prompt in the patient's convention where the file's ``orientation`` makes
    that exact (for a label written beside a DICOM or NIfTI file, whose world is the patient's): the inverse of
    :func:`recorded_prompt`. Otherwise as recorded."""
    if sides != "image" or orientation is None:
        return text, sides
    view = read_sides(orientation, "patient")
    if view.sides != "patient" or view.transpose:  # left/right do not run across the image as displayed
        return text, sides
    return (text if view.flip_columns else convert_sides(text, "image", "patient")), "patient"
