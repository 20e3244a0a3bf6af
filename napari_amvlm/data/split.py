"""Which training images are labeled: a seeded fraction, or an explicit list of image names."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def labeled_split(names: Sequence[str], fraction: float | None = None, labeled: Sequence[str] | None = None,
                  seed: int = 0) -> tuple[list[int], list[int]]:
    """(labeled indices, unlabeled indices).

    ``fraction`` in (0, 1]: round(fraction * n) images (at least 1) drawn with ``seed``; 1 means fully
    supervised (no unlabeled images). ``labeled``: the images with these names (e.g. the ones a user corrected).
    """
    n = len(names)
    if (fraction is None) == (labeled is None):
        raise ValueError("give either a labeled fraction or a list of labeled image names")
    if labeled is not None:
        wanted = list(dict.fromkeys(labeled))
        index = {name: i for i, name in enumerate(names)}
        unknown = [w for w in wanted if w not in index]
        if unknown:
            raise ValueError(f"labeled images not in the data: {', '.join(unknown[:5])}")
        if not wanted:
            raise ValueError("the list of labeled images is empty: correct at least one image first")
        chosen = sorted(index[w] for w in wanted)
    else:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"the labeled fraction must be in (0, 1], got {fraction}: at least one labeled image "
                             "is needed")
        k = max(1, round(fraction * n))
        chosen = sorted(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].tolist())
    rest = sorted(set(range(n)) - set(chosen))
    return chosen, rest
