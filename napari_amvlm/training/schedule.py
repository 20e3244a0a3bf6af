"""Learning-rate and weight ramps as pure functions of the step."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.01) -> float:
    """Multiplier of the base lr: linear warm-up over ``warmup`` steps, then cosine decay to ``floor``."""
    if total <= 0:
        return 1.0
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
