"""The widget freezes the objects alive after a model load, so full garbage collections stay short, and lifts the
freeze whenever that could keep garbage alive."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from napari_amvlm._widgets import _gc


def test_model_load_freezes_and_a_layer_open_at_the_freeze_is_still_freed(docked, qtbot):
    viewer, w = docked
    layer = viewer.add_image(np.zeros((32, 32), np.uint8), name="open at the freeze")
    w.load_model(w.model.folder)
    qtbot.waitUntil(lambda: not w.busy, timeout=60_000)
    assert gc.get_freeze_count() > 0 and id(layer) in _gc._open_at_freeze
    ref = weakref.ref(layer)
    viewer.layers.remove(layer)
    del layer
    assert gc.get_freeze_count() == 0  # lifted: the layer can be collected again
    gc.collect()
    assert ref() is None


def test_a_replaced_model_is_freed_while_the_freeze_holds(docked, qtbot, tiny_seg_dir):
    _, w = docked
    qtbot.waitUntil(lambda: gc.get_freeze_count() > 0, timeout=10_000)
    old = weakref.ref(w.model.segmenter.seg)
    w.load_model(tiny_seg_dir)
    qtbot.waitUntil(lambda: not w.busy and w.model is not None and w.model.segmenter.seg is not old(),
                    timeout=60_000)
    qtbot.wait(50)  # the worker that loaded it is released on a later turn of the event loop
    gc.collect()  # frozen objects are never collected: the old model must not be among them
    assert old() is None
