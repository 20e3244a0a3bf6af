"""Caption rewriting for flipped images (GUIDE §2.6)."""

import pytest

from napari_amvlm.data.text import flip_text_horizontal, flip_text_vertical, is_positional


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("upper left lung", "upper right lung"),
        ("lower left lung and lower right lung", "lower right lung and lower left lung"),
        ("Left lung. RIGHT side", "Right lung. LEFT side"),
        ("The nuclei density in the upper right is high.", "The nuclei density in the upper left is high."),
        ("bright leftover rights", "bright leftover rights"),  # whole words only
    ],
)
def test_flip_horizontal(before, after):
    assert flip_text_horizontal(before) == after


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("upper left lung", "lower left lung"),
        ("middle right lung", "middle right lung"),
        ("The nuclei density in the lower is high.", "The nuclei density in the upper is high."),
        ("Top and bottom", "Bottom and top"),
        # zone runs stay in the dataset's top-to-bottom order
        (
            "upper middle left lung and upper lower right lung",
            "middle lower left lung and upper lower right lung",
        ),
        ("upper middle lower left lung", "upper middle lower left lung"),
    ],
)
def test_flip_vertical(before, after):
    assert flip_text_vertical(before) == after


def test_double_flip_is_identity_on_real_grammar():
    s = "bilateral pulmonary infection, three infected areas, upper left lung and middle lower right lung."
    assert flip_text_horizontal(flip_text_horizontal(s)) == s
    assert flip_text_vertical(flip_text_vertical(s)) == s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unilateral pulmonary infection, one infected area, lower left lung.", True),
        ("middle right lung", True),
        ("The nuclei density in the lower is high.", True),
        ("The nuclei are evenly distributed.", False),
        ("bilateral pulmonary infection", False),
        ("brightness is high", False),
    ],
)
def test_is_positional(text, expected):
    assert is_positional(text) is expected


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("Unilateral pulmonary infection, one infected area, lower left lung.", ["lower left"]),
        ("two infected areas, upper middle lower left lung and lower right lung.",
         ["upper left", "middle left", "lower left", "lower right"]),
        ("all of the Right lung", ["upper right", "middle right", "lower right"]),  # a side alone: its whole half
        ("Bilateral pulmonary infection.", []),
        ("upper lobes", []),  # a zone without a side names no cell
    ],
)
def test_position_cells(text, cells):
    from napari_amvlm.data.text import POSITION_CELLS, position_cells

    assert [POSITION_CELLS[i] for i in position_cells(text)] == cells


def test_position_cells_follow_a_horizontal_flip():
    from napari_amvlm.data.text import POSITION_CELLS, position_cells

    text = "upper middle lower left lung and lower right lung."
    swapped = {c.replace("left", "L").replace("right", "left").replace("L", "right") for c in
               (POSITION_CELLS[i] for i in position_cells(text))}
    assert {POSITION_CELLS[i] for i in position_cells(flip_text_horizontal(text))} == swapped
