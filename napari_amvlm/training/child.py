"""Settings a training process started by the plugin applies to itself, first thing.

The viewer starts ``amvlm train`` without a ``preexec_fn`` (which would force a full ``fork`` of the viewer
process: tens of milliseconds on the GUI thread) and passes two environment variables instead:

- ``AMVLM_NICE``: niceness to add, so that the viewer wins the CPU whenever it needs it;
- ``AMVLM_PARENT_PID``: on Linux the process asks for SIGTERM when the thread that started it ends (the viewer
  crashed or was killed), and ends at once if that already happened.

It runs only the installed package: it is started as ``python -P`` (neither its working folder nor the script's
is put on the module path) in the round's own temporary folder, never in the folder the viewer was started from
or the project, with only the environment variables :func:`environment` keeps.
"""

from __future__ import annotations

import os
import signal
import sys

# what the training process needs of the viewer's environment: where programs, libraries and caches are, the
# locale, and the settings of the maths libraries and accelerators (nothing else: no PYTHONSTARTUP, no
# PYTHONHOME, ...; PYTHONPATH is kept for installs that rely on it)
ENV_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT",
             "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "XDG_CACHE_HOME")
ENV_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "CUBLAS_", "CUDNN_", "NCCL_", "ROCR_", "HIP_", "OMP_", "MKL_",
                "OPENBLAS_", "KMP_", "PYTORCH_", "TORCH_", "HF_", "TRANSFORMERS_", "MASTER_", "GLOO_", "AMVLM_")
NICE_ENV = "AMVLM_NICE"
PARENT_ENV = "AMVLM_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def environment(source: dict[str, str] | None = None) -> dict[str, str]:
    """The variables of ``source`` (default: this process's environment) a training process is given."""
    source = dict(os.environ if source is None else source)
    return {k: v for k, v in source.items() if k in ENV_NAMES or k.startswith(ENV_PREFIXES)}


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
