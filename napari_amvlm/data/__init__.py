"""Datasets, model input and caption-aware augmentations (engine code: no Qt, no napari). Image and mask files
are read by :mod:`napari_amvlm.io`."""

from .dataset import ImageTextDataset, Record, collate, find_csv, read_records
from .pixels import to_model_input
from .text import flip_text_horizontal, flip_text_vertical, is_positional
from .transforms import PairTransform, photometric_view

__all__ = [
    "ImageTextDataset",
    "PairTransform",
    "Record",
    "collate",
    "find_csv",
    "flip_text_horizontal",
    "flip_text_vertical",
    "is_positional",
    "photometric_view",
    "read_records",
    "to_model_input",
]
