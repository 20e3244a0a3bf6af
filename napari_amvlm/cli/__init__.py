"""The ``amvlm`` command line: :mod:`.main` builds the parser and runs a command; each command group is one
module that registers its subcommands (:mod:`.pretrain`, :mod:`.segmentation` for train/evaluate/segment,
:mod:`.project`, :mod:`.retrieval`). ``python -m napari_amvlm.cli`` and ``torchrun -m napari_amvlm.cli`` run
:func:`main` too."""

from .main import main

__all__ = ["main"]
