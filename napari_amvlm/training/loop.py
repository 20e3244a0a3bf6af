"""The annotation loop seen from the project (no Qt): which image to correct next, how good the weights in use are
on the user's own corrections, and how much the user still has to change.

The widget, ``amvlm project status``, the Retrain round's guard (:mod:`.round_guard`) and the loop simulator
(``benchmarks/annotation_loop.py``) all call these functions, so that what is measured is what the user gets:

- :func:`predict_image`: an image's mask for its latest prompt, cleaned up as the model says (the widget's path);
- :func:`most_uncertain`: the order of "Next most uncertain image" (mean uncertainty of each image's prediction);
- :func:`corrected_dice`: per-image Dice of a model against the human labels of some corrected images;
- :func:`loop_history`: per round, the held-back Dice of the weights in use before and after it, whether its
  weights were installed, and how much of the model's masks the user changed on the images corrected before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..inference.postprocess import Cleanup
from ..metrics import dice_iou
from ..project import MaskKind, Project, Status

if TYPE_CHECKING:
    from ..inference import Prediction, Segmenter


def image_prompt(project: Project, image_id: str, default: str = "", sides: str = "image") -> tuple[str, str] | None:
    """(text, sides) of an image's latest prompt, else ``(default, sides)``; None when neither has words."""
    prompts = project.prompts(image_id)
    text, side = (prompts[-1].text, prompts[-1].sides) if prompts else (default, sides)
    return (text, side) if text.strip() else None


def model_cleanup(segmenter: Segmenter) -> Cleanup | None:
    """The clean-up the model folder asks for (what the widget and ``amvlm segment`` apply by default)."""
    return Cleanup() if segmenter.seg.cfg.cleanup else None


def predict_image(segmenter: Segmenter, project: Project, image_id: str, default_prompt: str = "",
                  sides: str = "image") -> Prediction | None:
    """An image's prediction for its latest prompt (``default_prompt`` in ``sides`` when it has none), with the
    model's clean-up; None when there is no prompt. Raises ImageError for an image the model cannot segment."""
    prompt = image_prompt(project, image_id, default_prompt, sides)
    if prompt is None:
        return None
    image = np.asarray(project.read_image(image_id)[...])
    return segmenter.predict(image, prompt[0], sides=prompt[1], cleanup=model_cleanup(segmenter))


def most_uncertain(scores: dict[str, float], k: int) -> list[str]:
    """The ``k`` ids with the highest scores, highest first (ties by id, so the order is reproducible)."""
    return sorted(scores, key=lambda i: (-scores[i], i))[:k]


def corrected_dice(segmenter: Segmenter, project: Project, ids: list[str], default_prompt: str = "") -> list[float]:
    """Per-image Dice (in [0, 1], at the image's own size) of the model's mask, for each image's latest prompt
    (``default_prompt``, in the image's sides, without one) and with its clean-up, against the image's human
    label. Every id must be corrected and have a prompt."""
    out = []
    for image_id in ids:
        human = project.read_mask(image_id, MaskKind.HUMAN)
        if human is None:
            raise ValueError(f"{image_id} has no human label")
        pred = predict_image(segmenter, project, image_id, default_prompt)
        if pred is None:
            raise ValueError(f"{image_id} has no prompt to segment it with")
        out.append(dice_iou(pred.mask, np.asarray(human[...]) != 0)[0])
    return out


@dataclass(frozen=True)
class LoopRound:
    """One Retrain round as the user sees it (Dice in %, changed as a share of pixels in %)."""

    index: int
    installed: bool  # its weights were put in use
    heldback: int  # corrected images it held back to judge its weights
    dice_before: float | None  # held-back Dice of the weights in use when it started
    dice_after: float | None  # held-back Dice of its own weights
    corrected: int  # images corrected between the previous round and this one
    changed: float | None  # mean share of the model's mask changed on those images (None: unknown)

    @property
    def dice_in_use(self) -> float | None:
        """Held-back Dice of the weights in use after the round."""
        return self.dice_after if self.installed else self.dice_before


def loop_history(project: Project) -> list[LoopRound]:
    """Every round of the project with the figures of :class:`LoopRound`, oldest first."""
    corrected = _corrections(project)
    out, start = [], ""
    for rnd in project.rounds():
        n, changed = _corrected_between(corrected, start, rnd.time)
        m = rnd.metrics
        out.append(LoopRound(
            index=rnd.index, installed=rnd.installed, heldback=len(rnd.images.get("heldback", [])),
            dice_before=_percent(m.get("heldback_dice_before")), dice_after=_percent(m.get("heldback_dice_after")),
            corrected=n, changed=changed,
        ))  # fmt: skip
        start = rnd.time
    return out


def corrected_since_last_round(project: Project) -> tuple[int, float | None]:
    """(images corrected since the last round, mean % of the model's mask changed on them; None: unknown)."""
    rounds = project.rounds()
    return _corrected_between(_corrections(project), rounds[-1].time if rounds else "", None)


def _corrections(project: Project) -> list[tuple[str, float | None]]:
    """(time, share of the model's mask changed) of each corrected image's human label."""
    return [(rec.provenance.time, rec.provenance.changed) for rec in _human_records(project)]


def _corrected_between(corrected: list[tuple[str, float | None]], start: str,
                       end: str | None) -> tuple[int, float | None]:  # fmt: skip
    """(how many of ``corrected`` lie in (start, end], mean % changed on those where it is known); end None: now."""
    batch = [c for t, c in corrected if start < t and (end is None or t <= end)]
    known = [c for c in batch if c is not None]
    return len(batch), (100.0 * float(np.mean(known)) if known else None)


def _human_records(project: Project):
    return [rec for i in project.image_ids(Status.CORRECTED) if (rec := project.mask_record(i, MaskKind.HUMAN))]


def _percent(x: float | None) -> float | None:
    return None if x is None else 100.0 * float(x)


def history_table(rows: list[LoopRound]) -> str:
    """The rounds as a plain-text table (``amvlm project status``)."""
    if not rows:
        return "no Retrain round yet"
    lines = ["round  corrected before it  mask changed  held back  Dice in use before -> after  weights"]
    for r in rows:
        changed = f"{r.changed:.1f} %" if r.changed is not None else "?"
        before = f"{r.dice_before:.1f}" if r.dice_before is not None else "?"
        after = f"{r.dice_after:.1f}" if r.dice_after is not None else "?"
        lines.append(f"{r.index:>5}  {r.corrected:>19}  {changed:>12}  {r.heldback:>9}  {before:>12} -> {after:<12}"
                     f"  {'installed' if r.installed else 'kept the previous'}")
    return "\n".join(lines)
