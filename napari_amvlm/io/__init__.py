"""Reading and writing image and mask files, one module per format family (engine code: no Qt, no napari).

- :mod:`.errors`: the one clear error for a file that cannot be read, shared by every reader.
- :mod:`.limits`: what one image file may decode into, checked from its header before decoding.
- :mod:`.raster`: everyday image files (PNG, TIFF, JPEG, ...).
- :mod:`.dicom`: DICOM files and series folders (pydicom), as displayed; :mod:`.dicomseg`: DICOM-SEG out (highdicom).
- :mod:`.nifti`: NIfTI images and volumes in, masks out with the input's affine (nibabel).
- :mod:`.image`: the typed image every reader returns; :mod:`.formats`: which module reads or writes a file.
"""

from .errors import UnreadableImageError, reading
from .formats import check_mask_format, is_image_file, read_scan, write_mask
from .image import Image, ImageError, Orientation, Scan, as_image
from .raster import IMAGE_SUFFIXES, mask_to_bool, read_image, read_mask, read_pixels, write_mask_file

__all__ = [
    "IMAGE_SUFFIXES",
    "Image",
    "ImageError",
    "Orientation",
    "Scan",
    "as_image",
    "check_mask_format",
    "is_image_file",
    "read_scan",
    "write_mask",
    "UnreadableImageError",
    "mask_to_bool",
    "read_image",
    "read_mask",
    "read_pixels",
    "reading",
    "write_mask_file",
]
