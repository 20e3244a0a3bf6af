"""napari sample data (``File > Open Sample > napari-amvlm``): real images shipped in ``sample_data/``.

Each sample is an image layer whose ``metadata["amvlm_text"]`` holds the image's own sentence, so the AMVLM
widget can prefill its prompt, and ``metadata["amvlm_model"]`` the bundled model made for its kind of image, which
the widget switches to while a bundled model is in use. The files come from the installed package (works from a wheel); see
``sample_data/ATTRIBUTION.md`` and ``sample_data/LICENSE`` (the images keep their own non-commercial licenses).
Returns layer data tuples only: no Qt and no napari import here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data.dataset import Record, read_records
from .io import read_image
from .resources import sample_data_dir

LayerData = tuple[Any, dict[str, Any], str]
TEXT_KEY = "amvlm_text"  # layer metadata key of an image's sentence (the widget's prompt)
MODEL_KEY = "amvlm_model"  # layer metadata key of the bundled model (folder name in models/) made for the image

_SOURCES = {  # folder: (dataset, license, the bundled model trained on that dataset)
    "qata": ("QaTa-COV19", "CC BY-NC-SA 3.0 IGO", "amvlm-qata"),
    "monuseg": ("MoNuSeg", "CC BY-NC-SA 4.0", "amvlm-monuseg"),
}


def _pick(folder: str, prefer: str | None = None) -> Record:
    """The first record of a sample folder, or the first whose sentence contains ``prefer``."""
    records = read_records(sample_data_dir() / folder)
    return next((r for r in records if prefer and prefer in r.text), records[0])


def _layer(folder: str, record: Record) -> list[LayerData]:
    dataset, license_name, model = _SOURCES[folder]
    image = read_image(record.image)
    meta = {
        TEXT_KEY: record.text,
        MODEL_KEY: model,
        "amvlm_sample": {
            "dataset": dataset, "file": f"{folder}/{Path(record.image).relative_to(sample_data_dir() / folder)}",
            "license": license_name, "attribution": "sample_data/ATTRIBUTION.md",
        },
    }  # fmt: skip
    kwargs = {"name": f"{dataset} {record.name}", "metadata": meta, "rgb": image.ndim == 3}
    return [(image, kwargs, "image")]


def qata_chest_xray() -> list[LayerData]:
    """A QaTa-COV19 chest X-ray (224x224, 8-bit gray) whose sentence names one lung."""
    return _layer("qata", _pick("qata", prefer="unilateral"))


def monuseg_tile() -> list[LayerData]:
    """A MoNuSeg H&E tile (500x500 RGB) with its sentence about nuclei density."""
    return _layer("monuseg", _pick("monuseg"))
