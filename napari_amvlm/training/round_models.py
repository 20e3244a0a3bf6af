"""The model folders of retraining rounds: where a round's process writes, how a finished round's folder is
installed as ``<project>/models/round-NNN`` and recorded in the project, and which folder is the latest."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model.hub import SEG_WEIGHTS_NAME, has_segmenter
from ..project import Project
from .checkpoint import RESUME_NAME
from .events import StepEvent

MODELS_SUBDIR = "models"  # model versions trained from a project live in <project>/models/round-NNN
ROUND_FOLDER = re.compile(r"round-\d{3,}(-\d+)?")  # what install() names them


@dataclass
class RoundResult:
    """A finished, validated and recorded round."""

    index: int  # round number in the project
    folder: Path  # the new model folder
    model_sha: str  # sha256 of its segmenter weights (the project's model id)
    metrics: dict[str, float]  # last step's losses and the guard's figures
    segmenter: Any = None  # the loaded TextGuidedSegmenter (eval mode), ready to hot-swap
    installed: bool = True  # the guard put its weights in use (False: the folder was deleted, keep the old ones)
    message: str = ""  # one line for the user: what the guard decided, with both held-back figures


def partial_folder(project: Project, round_index: int) -> Path:
    """A fresh, hidden folder under ``<project>/models`` for a round's process to write its model to."""
    models = project.root / MODELS_SUBDIR
    if not models.is_symlink():
        models.mkdir(exist_ok=True)
    if models.is_symlink() or not models.is_dir():
        raise ValueError(f"{models} must be a folder inside the project, not a link: no round can be written there")
    return models / f".round-{round_index:03d}.partial-{uuid.uuid4().hex[:8]}"


def install(folder: Path, round_index: int) -> Path:
    """Move a validated round's model folder to ``models/round-NNN`` (a free name) and return it."""
    (folder / RESUME_NAME).unlink(missing_ok=True)  # optimizer state: a round is never resumed
    final = _free_name(folder.parent, f"round-{round_index:03d}")
    os.replace(folder, final)
    return final


def record(project: Project, folder: Path, *, base_model: Path, settings: dict[str, Any], seed: int,
           last_step: StepEvent | None, images: dict[str, list[str]], segmenter: Any,
           verdict: Any = None) -> RoundResult:  # fmt: skip
    """Register the round's model (and the one it started from) and record the round in the project, with the
    guard's ``verdict`` (a :class:`.round_guard.GuardVerdict`; None: installed unjudged)."""
    base_sha = None
    if has_segmenter(base_model):
        base_sha = project.add_model(base_model / SEG_WEIGHTS_NAME, name=base_model.name).sha256
    installed = verdict is None or verdict.install
    model = project.add_model(folder / SEG_WEIGHTS_NAME, name=folder.name if installed else "rejected")
    metrics = {k: v for k, v in (last_step.losses if last_step else {}).items() if np.isfinite(v)}
    metrics.update(verdict.metrics() if verdict is not None else {})
    settings = {**settings, "base_model_folder": str(base_model), "steps": last_step.step if last_step else 0,
                "model_folder": folder.name if installed else None}
    rec = project.record_round(model=model.sha256, settings=settings, seed=seed, metrics=metrics,
                               base_model=base_sha, images=images, installed=installed)
    message = verdict.line(rec.index) if verdict is not None else ""
    return RoundResult(rec.index, folder, model.sha256, metrics, segmenter, installed, message)


def _free_name(parent: Path, name: str) -> Path:
    path, k = parent / name, 1
    while path.exists():
        k += 1
        path = parent / f"{name}-{k}"
    return path


def latest_round_model(project: Project) -> Path | None:
    """The model folder of the project's latest round that still exists under ``<project>/models`` (a folder
    named as :func:`install` names them, inside the project: a manifest naming any other folder is ignored)."""
    models = project.root / MODELS_SUBDIR
    if models.is_symlink() or not models.is_dir():
        return None
    names = {m.sha256: m.name for m in project.models()}
    for rnd in reversed(project.rounds()):
        if not rnd.installed:
            continue
        name = rnd.settings.get("model_folder") or names.get(rnd.model, "")
        folder = models / name if isinstance(name, str) else models
        if ROUND_FOLDER.fullmatch(str(name)) and not folder.is_symlink() and has_segmenter(folder):
            return folder
    return None
