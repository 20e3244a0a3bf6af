"""The side convention read from an image's orientation: which view the model sees and what left/right mean."""

from __future__ import annotations

import numpy as np
import pytest

from napari_amvlm.inference.views import patient_prompt, read_sides, recorded_prompt
from napari_amvlm.io.image import Orientation, as_image

ARRAY = np.arange(12).reshape(3, 4)


@pytest.mark.parametrize("rows, columns, expected", [
    ("L", "F", ARRAY),  # the standard frontal view
    ("R", "F", ARRAY[:, ::-1]),  # a mirrored film
    ("L", "H", ARRAY[::-1]),  # upside down
    ("R", "H", ARRAY[::-1, ::-1]),  # turned half a turn
    ("F", "L", ARRAY.T),  # a quarter turn: rows run toward the feet
    ("H", "R", ARRAY.T[::-1, ::-1]),
    ("L", "P", ARRAY),  # an axial slice in the radiological view
    ("R", "A", ARRAY[::-1, ::-1]),  # an axial slice as stored in RAS
])  # fmt: skip
def test_patient_prompts_see_the_standard_view(rows, columns, expected):
    view = read_sides(Orientation(rows, columns, "Patient Orientation"), "patient")
    assert view.sides == "patient" and np.array_equal(view.apply(ARRAY), expected)
    assert np.array_equal(view.undo(view.apply(ARRAY)), ARRAY)
    assert ("as it is" in view.note) == view.identity and "Patient Orientation" in view.note
    image = view.image(as_image(ARRAY.astype(np.uint8), spacing=(0.5, 0.25)))
    assert image.spacing == ((0.25, 0.5) if view.transpose else (0.5, 0.25))


def test_image_sides_and_unknown_orientation_keep_the_image_as_it_is():
    for view in (read_sides(Orientation("R", "F", "Patient Orientation"), "image"), read_sides(None, "patient")):
        assert view.identity
    assert read_sides(None, "patient").sides == "patient" and "does not say" in read_sides(None, "patient").note
    assert read_sides(None, "image").sides == "image"


def test_a_lateral_view_has_no_left_and_right_across_it():
    view = read_sides(Orientation("A", "F", "Patient Orientation"), "patient")
    assert view.identity and view.sides == "image" and "do not run across" in view.note


@pytest.mark.parametrize("bad", [("L", "L"), ("L", "R"), ("X", "F"), ("", "F")])
def test_impossible_orientations_are_refused(bad):
    with pytest.raises(ValueError):
        Orientation(*bad, "Patient Orientation")
    assert Orientation.from_dict({"rows": bad[0], "columns": bad[1]}) is None


@pytest.mark.parametrize("rows, columns, sides, expected", [
    ("L", "F", "patient", ("lower right lung", "image")),  # standard film: the patient's left on the image's right
    ("R", "F", "patient", ("lower left lung", "image")),  # mirrored film: the patient's left on the image's left
    ("R", "H", "patient", ("lower left lung", "image")),  # half a turn: still mirrored across
    ("F", "L", "patient", ("lower left lung", "patient")),  # quarter turn: left/right run down the image
    ("A", "F", "patient", ("lower left lung", "image")),  # a lateral film: read in the image's sides
    ("R", "F", "image", ("lower left lung", "image")),  # written in the image's sides: as written
    (None, None, "patient", ("lower left lung", "patient")),  # the file does not say
])  # fmt: skip
def test_a_prompt_is_recorded_in_the_image_s_sides_when_the_file_says_how_the_patient_lies(rows, columns, sides,
                                                                                         expected):
    """Project images keep no orientation, so what a Retrain round trains on must already mean the image's sides."""
    orientation = Orientation(rows, columns, "Patient Orientation") if rows else None
    assert recorded_prompt("lower left lung", sides, orientation) == expected



@pytest.mark.parametrize("rows, columns, recorded, expected", [
    ("L", "F", ("lower right lung", "image"), ("lower left lung", "patient")),  # standard: the sides swap
    ("R", "F", ("lower left lung", "image"), ("lower left lung", "patient")),  # mirrored: the same words
    ("R", "H", ("lower left lung", "image"), ("lower left lung", "patient")),  # half a turn: mirrored across
    ("F", "L", ("lower left lung", "patient"), ("lower left lung", "patient")),  # quarter turn: kept as written
    ("A", "F", ("lower left lung", "image"), ("lower left lung", "image")),  # lateral: no patient sides across
    (None, None, ("lower left lung", "image"), ("lower left lung", "image")),  # the file does not say
    (None, None, ("lower left lung", "patient"), ("lower left lung", "patient")),
])  # fmt: skip
def test_a_recorded_prompt_reads_back_in_the_patient_s_sides_where_the_file_allows(rows, columns, recorded,
                                                                                   expected):
    """What a DICOM-SEG beside the file is labelled with: in the patient's sides whenever the orientation makes that
    exact, so a patient-side prompt comes back as the person wrote it."""
    orientation = Orientation(rows, columns, "Patient Orientation") if rows else None
    assert patient_prompt(*recorded, orientation) == expected
    if recorded == recorded_prompt("lower left lung", "patient", orientation):
        assert patient_prompt(*recorded, orientation)[0] == "lower left lung"
