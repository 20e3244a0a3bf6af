"""What a model was trained on, and whether an image looks like it.

A model folder may hold ``trained_on.json``: the dataset, the modality, the number of channels of its training
images as the model reads them (1: gray, 3: colour; a gray image saved as RGB has 1), and the range of three
statistics over its training images (1st to 99th percentile: a few odd training images do not widen it), each
measured on what the model sees (:func:`napari_amvlm.data.io.to_model_input`): mean intensity, colour saturation
(mean over pixels of the largest minus the smallest channel; 0 for gray) and contrast (standard deviation of the
gray level). :func:`check_fit` compares an image with those, so an H&E tile is not segmented by the chest X-ray
model without a word (nor a gray film by the histology model).
``amvlm trained-on`` writes the file (:func:`describe_images`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from ..data.pixels import to_model_input

TRAINED_ON_NAME = "trained_on.json"
FORMAT = "napari-amvlm/trained-on-v1"
GRAY_SATURATION = 0.05  # below: a gray image (an X-ray saved as RGB is 0); H&E tiles are 0.10 and above
MEAN_MARGIN = 0.10  # an image's mean intensity may lie this far outside the training range and still fit
STATS_SIDE = 64  # the statistics are measured on the image resized to this many pixels a side
SPAN_PERCENTILES = (1.0, 99.0)  # the range recorded for each statistic
MAX_BYTES = 64 * 1024  # a trained_on.json larger than this is refused (it holds a few numbers)


@dataclass(frozen=True)
class ImageStats:
    """Three statistics of one image, in [0, 1], as the model sees it."""

    mean: float  # mean intensity
    saturation: float  # mean over pixels of (largest - smallest channel)
    contrast: float  # standard deviation of the gray level

    @property
    def gray(self) -> bool:
        return self.saturation < GRAY_SATURATION

    @property
    def channels(self) -> int:
        """1 for a gray image (an RGB one whose channels agree too), 3 for a colour one."""
        return 1 if self.gray else 3


def image_stats(image: np.ndarray) -> ImageStats:
    """The statistics of a 2D image (gray or RGB, any dtype); a large image is subsampled first (fast)."""
    img = np.asarray(image)
    step = max(1, min(img.shape[:2]) // (4 * STATS_SIDE))
    x = to_model_input(img[::step, ::step], STATS_SIDE)  # (3, S, S) in [0, 1]
    return ImageStats(float(x.mean()), float((x.max(0) - x.min(0)).mean()), float(x.mean(0).std()))


@dataclass(frozen=True)
class TrainedOn:
    """What a model folder says it was trained on (``trained_on.json``)."""

    dataset: str  # e.g. "QaTa-COV19 (training split)"
    modality: str  # e.g. "chest X-ray", "H&E histology"
    images: int  # number of training images measured
    mean: tuple[float, float]  # range (SPAN_PERCENTILES) of the training images' mean intensity
    saturation: tuple[float, float]  # the same for colour saturation
    contrast: tuple[float, float]  # the same for contrast
    channels: int | None = None  # 1: gray, 3: colour, as the model reads them (None: from the saturation
    # range, for files written before the field)

    def __post_init__(self) -> None:
        if self.channels is None:
            object.__setattr__(self, "channels", 1 if self.saturation[1] < GRAY_SATURATION else 3)
        if self.channels not in (1, 3):
            raise ValueError(f"channels is 1 (gray) or 3 (colour), not {self.channels}")

    @property
    def gray(self) -> bool:
        """The model was trained on gray images."""
        return self.channels == 1

    def describe(self) -> str:
        return f"{self.modality} ({'gray' if self.gray else 'colour'}, {self.dataset})"


def describe_images(images: Iterable[np.ndarray], dataset: str, modality: str) -> TrainedOn:
    """The :class:`TrainedOn` of a set of training images."""
    stats = [image_stats(im) for im in images]
    if not stats:
        raise ValueError("no images to describe")

    def span(values: list[float]) -> tuple[float, float]:
        lo, hi = np.percentile(values, SPAN_PERCENTILES)
        return (round(float(lo), 4), round(float(hi), 4))

    gray = sum(s.channels == 1 for s in stats)
    return TrainedOn(dataset, modality, len(stats), span([s.mean for s in stats]),
                     span([s.saturation for s in stats]), span([s.contrast for s in stats]),
                     channels=1 if 2 * gray > len(stats) else 3)  # what most training images have


def write_trained_on(folder: str | Path, trained_on: TrainedOn) -> Path:
    path = Path(folder) / TRAINED_ON_NAME
    atomic_write_text(path, json.dumps({"format": FORMAT, **asdict(trained_on)}, indent=2) + "\n")
    return path


def read_trained_on(folder: str | Path) -> TrainedOn | None:
    """The folder's :class:`TrainedOn`, or None when it has no ``trained_on.json``. A file that is not one
    raises ValueError naming it."""
    path = Path(folder) / TRAINED_ON_NAME
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES // 1024} KB")
        d = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        spans = {k: tuple(float(v) for v in d[k]) for k in ("mean", "saturation", "contrast")}
        if any(len(v) != 2 for v in spans.values()):
            raise ValueError("each range needs two numbers")
        channels = d.get("channels")  # (absent from older files)
        return TrainedOn(str(d["dataset"]), str(d["modality"]), int(d["images"]), **spans,
                         channels=None if channels is None else int(channels))
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise ValueError(f"{path} is not a valid {TRAINED_ON_NAME}: {err}") from err


@dataclass(frozen=True)
class Fit:
    """Whether an image looks like a model's training images; ``reasons`` says why not (empty: it fits)."""

    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons


def check_fit(trained_on: TrainedOn | None, stats: ImageStats) -> Fit:
    """Compare an image's statistics with what a model was trained on (no ``trained_on``: it fits)."""
    if trained_on is None:
        return Fit()
    reasons = []
    if stats.channels != trained_on.channels:
        kind, n = ("gray", "1 channel") if stats.channels == 1 else ("colour", f"{stats.channels} channels")
        reasons.append(f"a {kind} image ({n}; the model's training images have {trained_on.channels})")
    lo, hi = trained_on.mean
    if stats.mean < lo - MEAN_MARGIN:
        reasons.append(f"darker than its training images (mean intensity {stats.mean:.2f}, training {lo:.2f}-"
                       f"{hi:.2f})")
    elif stats.mean > hi + MEAN_MARGIN:
        reasons.append(f"brighter than its training images (mean intensity {stats.mean:.2f}, training {lo:.2f}-"
                       f"{hi:.2f})")
    return Fit(tuple(reasons))


def fitting_models(stats: ImageStats, folders: Iterable[Path]) -> list[Path]:
    """The model folders (among ``folders``) whose ``trained_on.json`` the image fits; folders without one, or
    with a bad one, are left out."""
    out = []
    for folder in folders:
        try:
            trained_on = read_trained_on(folder)
        except ValueError:
            continue
        if trained_on is not None and check_fit(trained_on, stats).ok:
            out.append(folder)
    return out
