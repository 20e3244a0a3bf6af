"""Which training images are labeled: a seeded fraction, or an explicit list of image names."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

# BIDS names a file's subject with the entity "sub-<label>" (QaTa's BIMCV images: "sub-s12020_ses-e23592_...").
_SUBJECT = re.compile(r"(?:^|_)sub-([A-Za-z0-9]+)")


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


def spread_sample(indices: Sequence[int], limit: int | None, seed: int = 0) -> list[int]:
    """Up to ``limit`` of ``indices`` drawn at random with ``seed``, in their original order (all of them when
    ``limit`` is None or not smaller). Use it instead of the first ``limit``: folders list their files by name, and
    names often group images by source (QaTa's ``covid_*`` come before its ``sub-*``), so the first ones can all
    come from one source."""
    indices = list(indices)
    if limit is None or limit >= len(indices):
        return indices
    if limit < 1:
        raise ValueError(f"the sample size must be at least 1, got {limit}")
    picked = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:limit]
    return [indices[i] for i in sorted(picked.tolist())]


def subject(name: str) -> str | None:
    """The subject (patient) label a BIDS-style file name carries ("sub-s12020_ses-..." -> "s12020"), or None."""
    m = _SUBJECT.search(name)
    return m.group(1) if m else None


def unseen_subjects(names: Sequence[str], labeled: Sequence[int], candidates: Sequence[int]) -> list[int]:
    """The ``candidates`` whose file names carry a subject (see :func:`subject`) with no image among ``labeled``.

    Images of a patient whose other images were labeled score higher than a new patient's (the same lungs, often
    the same lesion), so choices scored on them favour memorising; a validation split of new patients does not."""
    seen = {subject(names[i]) for i in labeled}
    return [i for i in candidates if (s := subject(names[i])) is not None and s not in seen]
