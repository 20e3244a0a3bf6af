"""Settings a training process started by the plugin applies to itself, first thing.

The viewer starts ``amvlm train`` without a ``preexec_fn`` (which would force a full ``fork`` of the viewer
process: tens of milliseconds on the GUI thread) and passes two environment variables instead:

- ``AMVLM_NICE``: niceness to add, so that the viewer wins the CPU whenever it needs it;
- ``AMVLM_PARENT_PID``: on Linux the process asks for SIGTERM when the thread that started it ends (the viewer
  crashed or was killed), and ends at once if that already happened.
"""

from __future__ import annotations

import os
import signal
import sys

NICE_ENV = "AMVLM_NICE"
PARENT_ENV = "AMVLM_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def apply_from_env() -> None:
    nice = os.environ.pop(NICE_ENV, "")
    parent = os.environ.pop(PARENT_ENV, "")
    if nice.strip() and hasattr(os, "nice"):
        os.nice(int(nice))
    if parent.strip() and sys.platform == "linux":
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() != int(parent):  # the viewer ended before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)
