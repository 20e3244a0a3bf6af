"""Helpers shared by the benchmark scripts: statistics, machine description, the measured model, real data.

Not a test module and not part of the package: the scripts in this folder import it as a sibling.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_QATA = REPO.parent / "shared" / "data" / "qata_cov19"


# ------------------------------------------------------------------------------------------- statistics
def stats(values: list[float], digits: int = 4) -> dict:
    """Median, min, max and n of repeated measurements (the median is the reported figure)."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values)}


def timed(fn, n: int, warmup: int = 0, sync=None) -> list[float]:
    """Wall seconds of ``n`` calls of ``fn()`` after ``warmup`` untimed calls (``sync()`` before each clock)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append(time.perf_counter() - t0)
    return out


def print_table(rows: list[tuple], header: tuple) -> None:
    """A plain fixed-width table."""
    cells = [tuple(str(c) for c in header)] + [tuple("-" if c is None else str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def write_json(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


# -------------------------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict:
    """What the figures were measured on (CPU, cores, memory, versions, threads, load, GPU)."""
    import torch

    info = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _mem_total_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for pkg in ("transformers", "napari"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 (a missing package is just not reported)
            info[pkg] = None
    return info


def busy_warning(info: dict) -> str | None:
    """A warning when the machine was already busy before the run (figures then are not representative)."""
    load, cores = info.get("load_avg_1m_at_start"), info.get("cores_usable") or 1
    if load is not None and load > 0.5 * cores:
        return (f"the 1-minute load average was {load} on {cores} cores before the run started: other work was "
                "running, so these figures are not representative")
    return None


# ---------------------------------------------------------------------------------------------- model
def shipped_model_dir() -> Path:
    from napari_amvlm.resources import default_model_dir

    return default_model_dir()


def segmenter_folder(work: Path) -> tuple[Path, str]:
    """The shipped model folder and "trained" when it holds a segmenter; otherwise a copy of it in ``work``
    with a segmenter of the default config and random weights (seed 0), and "random" (timing only)."""
    import torch

    from napari_amvlm.config import SegmenterConfig
    from napari_amvlm.model.hub import has_segmenter, load_model, save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    shipped = shipped_model_dir()
    if has_segmenter(shipped):
        return shipped, "trained"
    folder = Path(work) / f"{shipped.name}-random-segmenter"
    if not has_segmenter(folder):
        torch.manual_seed(0)
        seg = TextGuidedSegmenter(load_model(shipped), SegmenterConfig())
        save_segmenter(seg, folder, metadata={"note": "random segmenter weights, for timing only"},
                       amvlm_source=shipped)
    return folder, "random"


# ----------------------------------------------------------------------------------------------- data
@dataclass
class Item:
    image: Path
    mask: Path
    text: str

    @property
    def name(self) -> str:
        return self.image.stem


def _read_split(folder: Path) -> list[Item]:
    with (folder / "text.csv").open(newline="", encoding="utf-8-sig") as f:
        return [Item(folder / r["image"], folder / r["mask"], " ".join(r["text"].split())) for r in csv.DictReader(f)]


def qata_items(split: str, n: int, seed: int = 0) -> tuple[list[Item], str]:
    """``n`` real QaTa images of ``split`` (train / valid) picked with ``seed``, and where they came from.

    Falls back to the repository's sample_data/qata (10 images) when the shared data is absent: then fewer
    images than asked are returned, and the source says so.
    """
    folder = SHARED_QATA / split
    if (folder / "text.csv").is_file():
        items = _read_split(folder)
        source = f"QaTa-COV19 {split} ({folder})"
    else:
        items = _read_split(REPO / "sample_data" / "qata")
        source = "sample_data/qata (shared data absent)"
    items = random.Random(seed).sample(items, min(n, len(items)))
    if len(items) < n:
        source += f": only {len(items)} of the {n} images asked for"
    return items, source


def write_training_csv(items: list[Item], path: Path) -> Path:
    """An ``image,mask,text`` CSV with absolute paths (the dataset resolves them as they are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "mask", "text"])
        w.writerows((str(it.image), str(it.mask), it.text) for it in items)
    return path


# ----------------------------------------------------------------------------------------------- load
_BUSY = """
import numpy as np
a = np.random.default_rng(0).random((384, 384))
while True:
    a = np.tanh(a @ a)  # BLAS on every core, the way a training run keeps them busy
"""


@contextmanager
def cpu_load(enabled: bool = True) -> Iterator[int | None]:
    """A CPU-bound process beside the caller for the ``with`` block (its pid; None when not ``enabled``): a
    matrix-product loop on every core, at the caller's own priority (a user's other work, not a niced one)."""
    if not enabled:
        yield None
        return
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", _BUSY], stdin=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # let it reach full speed
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------------- memory
def rss_mb(pid: int) -> float | None:
    """Current resident memory of a process in MB (psutil when installed, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        return _proc_status_mb(pid, "VmRSS")
    except Exception:  # noqa: BLE001 (the process ended)
        return None


def hwm_mb(pid: int) -> float | None:
    """Peak resident memory (high-water mark) of a live process in MB, from /proc (Linux)."""
    return _proc_status_mb(pid, "VmHWM")


def _proc_status_mb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def children_peak_rss_mb() -> float | None:
    """Largest peak resident memory of any child process this process has waited for (MB)."""
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    except (ImportError, OSError):
        return None
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20  # bytes on macOS


def segmenter_folder_in_child(work: Path) -> tuple[Path, str]:
    """:func:`segmenter_folder` run in a child process (keeps this process's peak memory clean)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "segmenter-folder", str(work)], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    folder, weights = out.split("\t")
    return Path(folder), weights


if __name__ == "__main__" and sys.argv[1:2] == ["segmenter-folder"]:
    print("\t".join(map(str, segmenter_folder(Path(sys.argv[2])))))


@contextmanager
def benchmark_model(given: Path | None, build: Callable[[Path], tuple[Path, str]] | None = None
                    ) -> Iterator[tuple[Path, str]]:
    """(model folder, "given" | "trained" | "random"): ``given``, or one built by ``build`` (default
    :func:`segmenter_folder`) in a temporary folder that lives as long as the ``with`` block."""
    if given:
        yield given, "given"
        return
    with tempfile.TemporaryDirectory(prefix="amvlm-bench-") as tmp:
        yield (build or segmenter_folder)(Path(tmp))
