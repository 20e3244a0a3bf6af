"""Datasets, image/mask reading and caption-aware augmentations (engine code: no Qt, no napari)."""

from .dataset import ImageTextDataset, Record, collate, find_csv, read_records
from .io import read_image, read_mask, to_model_input
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
    "read_image",
    "read_mask",
    "read_records",
    "to_model_input",
]
