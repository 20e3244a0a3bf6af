"""The guard of a Retrain round: new weights are put in use only when they do at least as well as the weights in use
on corrected images the round held back (never trained on).

Each round draws its held-back images afresh from the corrected ones (seeded by the round's number), so every
correction trains the model in most rounds and judges it in some. Both models segment each held-back image for its
latest prompt, with their clean-up, exactly as the widget would; the per-image Dice against the human label is
averaged, and the new weights are installed when their mean is not lower.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..project import Project
from .loop import corrected_dice

MIN_CORRECTED = 2  # a round needs one image to train on and one to judge with


def heldback_count(n_corrected: int, share: float, cap: int) -> int:
    """How many of ``n_corrected`` images a round holds back: ``share`` of them rounded up, at least 1, at most
    ``cap``, and always leaving at least one to train on."""
    if n_corrected < MIN_CORRECTED:
        raise ValueError(f"Retrain needs at least {MIN_CORRECTED} corrected images with a prompt (one is held back "
                         f"to check the new weights), got {n_corrected}: correct another image first")
    return max(1, min(math.ceil(share * n_corrected), cap, n_corrected - 1))


def choose_heldback(ids: Sequence[str], round_index: int, share: float, cap: int, seed: int = 0) -> list[str]:
    """The corrected images round ``round_index`` holds back (a seeded draw: each round draws its own)."""
    k = heldback_count(len(ids), share, cap)
    pool = sorted(ids)
    return sorted(random.Random(f"{seed}:{round_index}").sample(pool, k))


@dataclass
class GuardVerdict:
    """Both models' Dice (in [0, 1]) on each held-back image, and whether the new weights go in use."""

    heldback: list[str]
    dice_before: list[float] = field(default_factory=list)  # the weights in use
    dice_after: list[float] = field(default_factory=list)  # the round's weights

    @property
    def mean_before(self) -> float:
        return sum(self.dice_before) / len(self.dice_before)

    @property
    def mean_after(self) -> float:
        return sum(self.dice_after) / len(self.dice_after)

    @property
    def install(self) -> bool:
        """The new weights do at least as well on the held-back images."""
        return self.mean_after >= self.mean_before

    def line(self, round_index: int) -> str:
        """One sentence for the status line."""
        n = len(self.heldback)
        figures = (f"Dice {100 * self.mean_after:.1f} against {100 * self.mean_before:.1f} for the weights in use on "
                   f"{n} held-back corrected image{'s' if n != 1 else ''}")
        if self.install:
            return f"Round {round_index}: its weights are in use ({figures})."
        return f"Round {round_index}: kept the previous weights, the new ones did worse ({figures})."

    def metrics(self) -> dict[str, float]:
        """What the project records of the verdict (Dice in [0, 1])."""
        return {"heldback_dice_before": self.mean_before, "heldback_dice_after": self.mean_after,
                "heldback_n": float(len(self.heldback))}


def judge(project: Project, heldback: list[str], current, candidate, default_prompt: str = "") -> GuardVerdict:
    """Score the weights in use (``current``) and the round's (``candidate``), two inference Segmenters, on the
    held-back corrected images (``default_prompt`` for those without a prompt of their own)."""
    return GuardVerdict(list(heldback), corrected_dice(current, project, heldback, default_prompt),
                        corrected_dice(candidate, project, heldback, default_prompt))
