"""Reading and writing image and mask files, one module per format family (engine code: no Qt, no napari).

- :mod:`.errors`: the one clear error for a file that cannot be read, shared by every reader.
- :mod:`.limits`: what one image file may decode into, checked from its header before decoding.
- :mod:`.raster`: everyday image files (PNG, TIFF, JPEG, ...).
"""

from .errors import UnreadableImageError, reading
from .raster import IMAGE_SUFFIXES, mask_to_bool, read_image, read_mask, read_pixels, write_mask_file

__all__ = [
    "IMAGE_SUFFIXES",
    "UnreadableImageError",
    "mask_to_bool",
    "read_image",
    "read_mask",
    "read_pixels",
    "reading",
    "write_mask_file",
]
