"""The napari side of napari-amvlm: the only package that imports Qt, magicgui or napari widgets."""

from ._main import AMVLMWidget

__all__ = ["AMVLMWidget"]
