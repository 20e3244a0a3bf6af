"""Typed progress events yielded by the training loops; the CLI prints them, the plugin relays them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StartEvent:
    total_steps: int  # optimisation steps of the whole run
    start_step: int  # 0, or the step a resumed run continues from
    device: str  # where the run computes
    n_samples: int  # training pairs / images


@dataclass
class StepEvent:
    step: int  # 1-based global step just finished
    total_steps: int
    epoch: int  # 1-based
    losses: dict[str, float] = field(default_factory=dict)  # every named loss term, and "loss"
    lr: float = 0.0
    images_per_s: float = 0.0  # training throughput of this step


@dataclass
class CheckpointEvent:
    step: int
    path: Path  # the file just written (atomically)
    kind: str = "resume"  # "resume" (optimizer state included) or "model" (the weights users load)


@dataclass
class MetricsEvent:
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class DoneEvent:
    steps: int
    wall_s: float
    out: Path  # the model folder
    state: dict | None = None  # final trained tensors (name -> tensor), for callers that keep them in memory


def format_event(ev) -> str | None:
    """One human-readable line per event (None for events not worth a line)."""
    if isinstance(ev, StartEvent):
        resumed = f", resuming at step {ev.start_step}" if ev.start_step else ""
        return f"start: {ev.n_samples} samples, {ev.total_steps} steps on {ev.device}{resumed}"
    if isinstance(ev, StepEvent):
        terms = " ".join(f"{k}={v:.4f}" for k, v in ev.losses.items())
        return (f"epoch {ev.epoch} step {ev.step}/{ev.total_steps} {terms} lr={ev.lr:.2e} "
                f"{ev.images_per_s:.1f} img/s")
    if isinstance(ev, CheckpointEvent):
        return f"checkpoint ({ev.kind}) at step {ev.step}: {ev.path}"
    if isinstance(ev, MetricsEvent):
        return f"metrics at step {ev.step}: " + " ".join(f"{k}={v:.4f}" for k, v in ev.metrics.items())
    if isinstance(ev, DoneEvent):
        return f"done: {ev.steps} steps in {ev.wall_s:.0f} s -> {ev.out}"
    return None


def log_line(ev, log_every: int) -> str | None:
    """The line a command prints for an event: every ``log_every``-th step (and the last), no resume checkpoints."""
    if isinstance(ev, StepEvent) and ev.step % log_every and ev.step != ev.total_steps:
        return None
    if isinstance(ev, CheckpointEvent) and ev.kind == "resume":
        return None
    return format_event(ev)
