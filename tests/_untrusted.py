"""Helpers of the tests that open crafted projects, model folders and images: decoy files outside the crafted
folder, a working directory with a ``napari_amvlm`` package that must never be imported, and commands run the way
a user runs them (the ``amvlm`` script) in a process whose address space is limited."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MEMORY_LIMIT = 3 << 30  # address space of a command under test: ~1.1 GiB is what `amvlm project add` maps
AMVLM = Path(sys.executable).with_name("amvlm")
SHADOW_MARKER = "SHADOW-PACKAGE-IMPORTED"


def tree_digest(root: Path) -> str:
    """Hash of every path under ``root`` and every file's bytes (links are hashed as links)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(f"{p.relative_to(root)}|{p.is_symlink()}|{p.is_dir()}".encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()


class Decoys:
    """Files outside the crafted folder that nothing may touch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "sub").mkdir(parents=True)
        (root / "notes.txt").write_text("a colleague's notes\n")
        (root / "sub" / "data.bin").write_bytes(os.urandom(256))
        self.digest = tree_digest(root)

    def assert_untouched(self) -> None:
        assert self.root.is_dir() and tree_digest(self.root) == self.digest, f"{self.root} was changed"


def shadow_cwd(tmp: Path) -> tuple[Path, Path]:
    """A working directory holding a ``napari_amvlm`` package whose import leaves a marker; (folder, marker)."""
    cwd, marker = tmp / "cwd", tmp / SHADOW_MARKER
    (cwd / "napari_amvlm" / "cli").mkdir(parents=True)
    code = f"open({str(marker)!r}, 'w').write('imported')\n"
    for init in ("__init__.py", "cli/__init__.py", "cli/__main__.py"):
        (cwd / "napari_amvlm" / init).write_text(code)
    return cwd, marker


@contextlib.contextmanager
def limited_memory(extra: int = 2 << 30) -> Iterator[None]:
    """Limit this process's address space to what it maps now plus ``extra`` bytes for the block (the soft limit,
    restored after): a test of something that must not allocate cannot take the machine down when it fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped = int(re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) << 10
    limit = mapped + extra if hard == resource.RLIM_INFINITY else min(mapped + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _limited(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_limited(cmd: list[str], cwd: Path, limit: int = MEMORY_LIMIT, timeout: float = 180,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """Run ``cmd`` in ``cwd`` with its address space limited to ``limit`` bytes (single-threaded maths, so the
    limit does not depend on the number of cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}  # fmt: skip
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, preexec_fn=_limited(limit))


def run_amvlm(*args: Any, cwd: Path, limit: int = MEMORY_LIMIT) -> subprocess.CompletedProcess:
    """The ``amvlm`` command as a user runs it (its console script), memory-limited."""
    return run_limited([AMVLM, *args], cwd, limit)


def run_python(code: str, cwd: Path, limit: int = MEMORY_LIMIT) -> subprocess.CompletedProcess:
    """A Python snippet in a memory-limited process (``-P``: the snippet's own folder is not on the path)."""
    return run_limited([sys.executable, "-P", "-c", code], cwd, limit)


def assert_one_clear_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed with exactly one line on stderr holding every fragment (no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def edit_manifest(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change a project's manifest in place, as someone crafting a project would."""
    path = root / "amvlm-project.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m, indent=1))
