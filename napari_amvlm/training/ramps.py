"""Pure ramp schedules in [0, 1] (the Mean Teacher reference's ``ramps.py`` idea, written anew).

All take the current ``step`` and the ramp ``length`` in the same unit (steps or epochs) and use
t = clip(step / length, 0, 1); a ``length`` of 0 means the ramp is already over (t = 1).
"""

from __future__ import annotations

import math


def _progress(step: float, length: float) -> float:
    """t = clip(step / length, 0, 1), with t = 1 when length == 0."""
    if length < 0:
        raise ValueError(f"ramp length must be >= 0, got {length}")
    if length == 0:
        return 1.0
    return min(max(float(step) / float(length), 0.0), 1.0)


def sigmoid_rampup(step: float, length: float) -> float:
    """exp(-5 (1 - t)^2): exp(-5) ~ 0.0067 at step 0, 1 from step >= length (Laine & Aila, 2017)."""
    t = _progress(step, length)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


def linear_rampup(step: float, length: float) -> float:
    """t: 0 at step 0, 1 from step >= length."""
    return _progress(step, length)


def cosine_rampdown(step: float, length: float) -> float:
    """(cos(pi t) + 1) / 2: 1 at step 0, 0 from step >= length."""
    t = _progress(step, length)
    return float(0.5 * (math.cos(math.pi * t) + 1.0))
