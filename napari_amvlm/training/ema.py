"""EMA teacher of the Mean-Teacher loop (GUIDE §2.2).

The teacher starts as an exact deep copy of the student (same weights and buffers; the released code gave it a
different initialisation, a bug). After each optimiser step of the student::

    a = min(1 - 1 / (step + 1), alpha_max)
    theta_teacher <- a * theta_teacher + (1 - a) * theta_student      (every parameter)
    buffer_teacher <- buffer_student                                    (every buffer)

so step 0 copies the student (a = 0), early steps average over all steps so far (a = 1 - 1/(step+1) is the
running mean), and later steps forget with time constant 1 / (1 - alpha_max) = 100 steps.

Buffers (BatchNorm running mean/var and ``num_batches_tracked``) are **copied**, not averaged: they are
themselves running averages of the student's activation statistics, and the Mean-Teacher teacher is a
temporal average of a network that sees the same input distribution, so the student's statistics are the
best available estimate for it. Copying also keeps integer buffers exact and makes the teacher's state a
pure function of the student's history (it never depends on whether the teacher ran in train mode). The
teacher is kept in eval mode, so its forward passes use these running statistics and never modify them;
call ``ema.module.train()`` explicitly if batch statistics are wanted (the next ``update`` overwrites
whatever the teacher's own forward passes wrote into its buffers).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn


def ema_decay(step: int, alpha_max: float = 0.99) -> float:
    """a = min(1 - 1/(step + 1), alpha_max) for ``step`` >= 0."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return min(1.0 - 1.0 / (step + 1), alpha_max)


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare module behind DistributedDataParallel / DataParallel wrappers."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _matched(teacher: Iterator[tuple[str, torch.Tensor]], student: Iterator[tuple[str, torch.Tensor]], kind: str
             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pairs (teacher tensor, student tensor) by name; a clear error when the two models differ."""
    t, s = dict(teacher), dict(student)
    if t.keys() != s.keys():
        missing, extra = sorted(t.keys() - s.keys()), sorted(s.keys() - t.keys())
        raise ValueError(f"student {kind} do not match the teacher: missing {missing[:5]}, unexpected {extra[:5]}")
    pairs = [(tensor, s[name]) for name, tensor in t.items()]
    for name, (a, b) in zip(t, pairs):
        if a.shape != b.shape:
            raise ValueError(f"{kind[:-1]} {name!r}: teacher shape {tuple(a.shape)}, student {tuple(b.shape)}")
    return pairs


class EMATeacher:
    """Exponential-moving-average copy of a student network (see module doc for the update and buffers).

    ``ema(x)`` runs the teacher; ``ema.module`` is the teacher ``nn.Module``; ``state_dict()`` /
    ``load_state_dict()`` are the teacher's (a plain tensor dict, safetensors-compatible).
    """

    def __init__(self, student: nn.Module, alpha_max: float = 0.99) -> None:
        if not 0.0 <= alpha_max < 1.0:
            raise ValueError(f"alpha_max must be in [0, 1), got {alpha_max}")
        self.alpha_max = float(alpha_max)
        self.module: nn.Module = copy.deepcopy(_unwrap(student))
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
            p.grad = None  # a deep copy also copies the student's current gradients

    def decay(self, step: int) -> float:
        """The EMA coefficient a used by ``update(student, step)``."""
        return ema_decay(step, self.alpha_max)

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> float:
        """theta_t <- a theta_t + (1 - a) theta_s for parameters, copy buffers; returns a."""
        a = self.decay(step)
        student = _unwrap(student)
        for t, s in _matched(self.module.named_parameters(), student.named_parameters(), "parameters"):
            t.mul_(a).add_(s.detach().to(t.dtype), alpha=1.0 - a)
        for t, s in _matched(self.module.named_buffers(), student.named_buffers(), "buffers"):
            t.copy_(s)
        return a

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The teacher's ``state_dict`` (parameters and persistent buffers)."""
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor], strict: bool = True) -> Any:
        """Load teacher weights (e.g. when resuming); parameters stay frozen."""
        result = self.module.load_state_dict(state, strict=strict)
        for p in self.module.parameters():
            p.requires_grad_(False)
        return result

    def to(self, *args: Any, **kwargs: Any) -> EMATeacher:
        """Move the teacher (same arguments as ``nn.Module.to``); returns self."""
        self.module.to(*args, **kwargs)
        return self
