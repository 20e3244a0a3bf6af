"""BatchNorm statistics re-estimated from a set of images (no labels, no gradient): a model trained on one
hospital's films normalises its features with that hospital's means and variances; a project of another's can
give its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn


@torch.no_grad()
def reestimate_batchnorm(module: nn.Module, batches: Iterable[torch.Tensor], blend: float = 1.0) -> int:
    """Set the running statistics of every BatchNorm layer in ``module`` to ``blend`` times their plain average over
    ``batches`` (each passed through ``module`` as it is) plus ``1 - blend`` times the statistics they had; returns
    the number of images seen. Nothing changes when ``batches`` is empty. ``module`` is left in eval mode."""
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must be in [0, 1], got {blend}")
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    old = [(m.running_mean.clone(), m.running_var.clone(), m.momentum) for m in bns]
    module.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every image weighs the same
        m.train()
    seen = 0
    try:
        for x in batches:
            module(x)
            seen += len(x)
    except BaseException:
        seen = 0  # nothing half-estimated is kept
        raise
    finally:
        for m, (mean, var, momentum) in zip(bns, old):
            m.momentum = momentum
            m.eval()
            if seen == 0:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
            else:
                m.running_mean.mul_(blend).add_(mean, alpha=1.0 - blend)
                m.running_var.mul_(blend).add_(var, alpha=1.0 - blend)
    return seen


def image_batches(ds, mirrored: bool, device: str | torch.device = "cpu", batch: int = 16) -> Iterator[torch.Tensor]:
    """Every image of the dataset ``ds`` as it is stored (``ds[i]["image"]``, no augmentation), in batches, each
    followed by its mirror when ``mirrored`` (what a model that averages with the mirror sees)."""
    for start in range(0, len(ds), batch):
        images = torch.stack([ds[i]["image"] for i in range(start, min(start + batch, len(ds)))]).to(device)
        yield images
        if mirrored:
            yield images.flip(-1)
