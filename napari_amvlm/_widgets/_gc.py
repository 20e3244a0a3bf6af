"""Short full garbage collections in the viewer process.

With napari, Qt, PyTorch and transformers loaded, Python's collector tracks over half a million objects, and every
automatic full collection walks all of them: about a quarter of a second during which the viewer cannot react,
at a moment nobody chose (``benchmarks/gc_pause.py`` measures it). Once a model has loaded, the widget collects
once and freezes everything alive (:func:`gc.freeze`), so later full collections walk only the objects made
since. Frozen objects are never collected, so the freeze is lifted (:func:`gc.unfreeze`; the next full
collection frees what died) when something that was alive at the freeze may become garbage in a cycle: a layer
that was open then is removed, or the viewer closes. A model replaced at a hot-swap needs nothing: it holds no
reference cycles once the garbage of its loading has been collected, so reference counting frees it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

_open_at_freeze: set[int] = set()  # ids of the layers that were open at the freeze


def settle(layers: Iterable[object]) -> None:
    """Collect everything collectable now (frozen objects included), then freeze what is alive (call when the
    user waits anyway)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _open_at_freeze.clear()
    _open_at_freeze.update(id(layer) for layer in layers)


def layer_removed(layer: object) -> None:
    """A layer left the viewer: lift the freeze if it was open at the freeze (else it could never be freed)."""
    if id(layer) in _open_at_freeze:
        release()


def release() -> None:
    """Lift the freeze: the frozen objects go back to the oldest generation and are collected as usual."""
    gc.unfreeze()
    _open_at_freeze.clear()
