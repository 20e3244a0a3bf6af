"""Typed records of an annotation project (see :mod:`napari_amvlm.project`) and its errors.

Everything here is plain data: dataclasses that convert to and from the JSON manifest. No zarr, no Qt.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

AuthorKind = Literal["person", "model"]
MODEL_AUTHOR_PREFIX = "model:"


class ProjectError(ValueError):
    """Base class of every error about a project folder (a ``ValueError``, so the CLI prints one line)."""


class NotAProjectError(ProjectError):
    """The folder is not an annotation project (no manifest, or a manifest of something else)."""


class ProjectVersionError(ProjectError):
    """The project was written by a newer version of napari-amvlm (a newer on-disk format)."""


class CorruptProjectError(ProjectError):
    """The manifest and the arrays on disk disagree (missing array, wrong shape or dtype)."""


class Status(str, Enum):
    """Where an image is in the annotation loop."""

    UNLABELED = "unlabeled"  # no prediction and no human label yet
    PREDICTED = "predicted"  # a model wrote a prediction; nobody has corrected it
    CORRECTED = "corrected"  # a person marked a label as corrected (the human label)


class MaskKind(str, Enum):
    """The three mask slots of an image."""

    HUMAN = "human"  # written only by Project.mark_corrected / import_masks (a person)
    PREDICTION = "prediction"  # latest model prediction
    PSEUDO_LABEL = "pseudo_label"  # latest pseudo-label of a training round


def utc_now() -> str:
    """The current time as an ISO 8601 string in UTC, with microseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Provenance:
    """Who made a mask, with what, and when."""

    author: str  # a person's name, or "model:<sha256 prefix>" for a model
    author_kind: AuthorKind  # "person" or "model"
    time: str = field(default_factory=utc_now)  # ISO 8601, UTC
    prompt: str | None = None  # the text prompt that produced (or accompanied) the mask
    model: str | None = None  # sha256 of the weights file that produced the mask
    round: int | None = None  # training round whose model produced the mask
    note: str = ""  # free text, e.g. "imported from mask_covid_1.png"
    sides: str | None = None  # what left/right in the prompt meant: "image" or "patient" (None: "image")
    changed: float | None = None  # human labels: share of the image's pixels whose foreground/background the person
    # changed from the image's latest prediction (0: accepted as is); None when there was no prediction to change

    @classmethod
    def person(cls, author: str, **kwargs: Any) -> Provenance:
        """Provenance of a mask drawn or accepted by a person; ``author`` must name that person."""
        author = (author or "").strip()
        if not author:
            raise ValueError("a human label needs the name of the person who corrected it (author)")
        if author.startswith(MODEL_AUTHOR_PREFIX):
            raise ValueError(f"author {author!r} names a model; a human label must be authored by a person")
        return cls(author=author, author_kind="person", **kwargs)

    @classmethod
    def from_model(cls, model: str, **kwargs: Any) -> Provenance:
        """Provenance of a mask written by the model whose weights hash to ``model``."""
        return cls(author=MODEL_AUTHOR_PREFIX + model[:12], author_kind="model", model=model, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        return cls(**d)

    @property
    def edited(self) -> bool | None:
        """Whether the person changed the model's mask (None: unknown, there was no prediction)."""
        return None if self.changed is None else self.changed > 0


@dataclass(frozen=True)
class MaskRecord:
    """One stored mask: where its array is, how to export it, and its provenance."""

    kind: MaskKind  # which slot it fills
    array: str  # name of the zarr array inside the project's arrays/ folder
    dtype: str  # stored dtype (uint8, uint16 or uint32); 0 is background
    foreground: int | None  # for a binary mask stored as 0/1: the value the source used for 1 (e.g. 255)
    provenance: Provenance
    source_dtype: str | None = None  # unsigned dtype the mask came in (export gives it back), None if unknown

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kind"] = self.kind.value
        d["provenance"] = self.provenance.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MaskRecord:
        return cls(
            kind=MaskKind(d["kind"]),
            array=d["array"],
            dtype=d["dtype"],
            foreground=d.get("foreground"),
            provenance=Provenance.from_dict(d["provenance"]),
            source_dtype=d.get("source_dtype"),
        )


@dataclass(frozen=True)
class PromptRecord:
    """A prompt typed for an image."""

    text: str
    author: str  # person or "model:..." / "dataset"
    time: str = field(default_factory=utc_now)
    sides: str = "image"  # what left/right in ``text`` mean: "image" (as displayed) or "patient"


@dataclass(frozen=True)
class ImageRecord:
    """One 2D image (a slice of a stack is its own image) as the manifest describes it."""

    id: str  # stable id: "<name>-<first 10 hex of sha256>"
    name: str  # unique within the project; exported masks are named "<prefix><name>.<ext>"
    source: str | None  # the file it came from (as given, resolved), None for arrays
    slice: int | None  # index in the source stack, None for a 2D source
    n_slices: int  # number of slices in the source (1 for 2D)
    sha256: str  # sha256 of dtype, shape and pixel bytes of this 2D image
    file_sha256: str | None  # sha256 of the source file's bytes
    shape: tuple[int, ...]  # (H, W) or (H, W, C)
    dtype: str  # pixel dtype, e.g. "uint8", "uint16"
    rgb: bool  # True when the last axis holds colour channels
    vmin: float  # smallest pixel value (for display contrast)
    vmax: float  # largest pixel value
    array: str  # name of the zarr array holding the pixels
    added: str  # ISO time it was added

    @property
    def plane_shape(self) -> tuple[int, int]:
        """(H, W): the shape every mask of this image has."""
        return (self.shape[0], self.shape[1])

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageRecord:
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in fields}
        kw["shape"] = tuple(kw["shape"])
        return cls(**kw)


@dataclass(frozen=True)
class ModelRecord:
    """A version of the model weights known to the project."""

    sha256: str  # sha256 of the safetensors file: the model's identity
    name: str  # a readable name (defaults to the file's parent folder name)
    source: str  # path of the weights file when it was registered
    size: int  # file size in bytes
    added: str  # ISO time of registration


@dataclass(frozen=True)
class RoundRecord:
    """One training round: what it produced, how, and how well."""

    index: int  # 1, 2, ... in the order rounds were recorded
    model: str  # sha256 of the weights the round produced
    base_model: str | None  # sha256 of the weights it started from
    settings: dict[str, Any]  # training settings (JSON-serialisable)
    seed: int  # random seed
    metrics: dict[str, float]  # validation metrics, e.g. {"dice": 0.71}
    time: str  # ISO time the round was recorded
    images: dict[str, list[str]] = field(default_factory=dict)  # e.g. {"labeled": [...], "unlabeled": [...],
    # "heldback": [...]}
    installed: bool = True  # its weights were put in use (False: the guard kept the previous weights)
