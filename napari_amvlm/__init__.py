"""napari-amvlm: text-guided semi-supervised medical image segmentation after AMVLM.

The engine (everything outside ``_widgets``) imports neither Qt nor napari, and nothing heavy
happens at import time.
"""

__version__ = "0.1.0"
