"""``python -m napari_amvlm.cli`` (and ``torchrun -m napari_amvlm.cli``): the ``amvlm`` command."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
