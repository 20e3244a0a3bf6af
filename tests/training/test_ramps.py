"""Ramp schedules against their closed forms."""

import math
from itertools import pairwise

import pytest

from napari_amvlm.training.ramps import cosine_rampdown, linear_rampup, sigmoid_rampup


@pytest.mark.parametrize("step,length", [(0, 10), (3, 10), (5, 10), (10, 10), (25, 10), (-2, 10), (7, 0), (0, 0)])
def test_closed_forms(step, length):
    t = 1.0 if length == 0 else min(max(step / length, 0.0), 1.0)
    assert sigmoid_rampup(step, length) == pytest.approx(math.exp(-5 * (1 - t) ** 2), abs=1e-12)
    assert linear_rampup(step, length) == pytest.approx(t, abs=1e-12)
    assert cosine_rampdown(step, length) == pytest.approx(0.5 * (math.cos(math.pi * t) + 1), abs=1e-12)


def test_hand_values():
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == 1.0 and sigmoid_rampup(0, 0) == 1.0
    assert linear_rampup(1, 4) == 0.25
    assert cosine_rampdown(0, 8) == 1.0 and cosine_rampdown(4, 8) == pytest.approx(0.5)
    assert cosine_rampdown(8, 8) == pytest.approx(0.0, abs=1e-15)


def test_monotone_and_bounded():
    up = [sigmoid_rampup(s, 20) for s in range(30)]
    down = [cosine_rampdown(s, 20) for s in range(30)]
    assert all(0 < a <= b <= 1 for a, b in pairwise(up))
    assert all(1 >= a >= b >= 0 for a, b in pairwise(down))
    assert all(isinstance(v, float) for v in up + down)


def test_negative_length_is_an_error():
    with pytest.raises(ValueError, match="length"):
        sigmoid_rampup(1, -1)
