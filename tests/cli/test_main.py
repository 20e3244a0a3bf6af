"""The ``amvlm`` entry points: ``python -m napari_amvlm.cli``, the console script, ``torchrun -m
napari_amvlm.cli`` (two processes training together), and the parser itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from napari_amvlm.cli import main
from napari_amvlm.cli.main import build_parser

from ..conftest import SAMPLE_DATA

COMMANDS = ["pretrain", "retrieval", "train", "evaluate", "segment", "vocabulary", "trained-on", "project"]


def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, **kw)


def test_every_command_is_registered() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == COMMANDS


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2 and "COMMAND" in capsys.readouterr().out


def test_python_dash_m_version_and_help() -> None:
    out = _run(sys.executable, "-m", "napari_amvlm.cli", "--version")
    assert out.returncode == 0 and out.stdout.startswith("amvlm ")
    out = _run(sys.executable, "-m", "napari_amvlm.cli", "--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: amvlm")
    assert all(f"    {c}" in out.stdout for c in COMMANDS)


def test_console_script() -> None:
    script = Path(sys.executable).with_name("amvlm")
    if not script.is_file():
        pytest.skip(f"no console script next to {sys.executable} (package not installed in this environment)")
    out = _run(str(script), "segment", "--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: amvlm segment")


def test_torchrun_trains_with_two_processes(tiny_amvlm_dir: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    out_dir = tmp_path / "ddp"
    out = _run(torchrun, "--standalone", "--nproc_per_node", "2", "-m", "napari_amvlm.cli", "train",
               "--data", str(SAMPLE_DATA / "qata"), "--model", str(tiny_amvlm_dir), "--out", str(out_dir),
               "--labeled-fraction", "0.4", "--labeled-batch", "2", "--unlabeled-batch", "2", "--base", "4",
               "--epochs", "1", "--max-steps", "2", "--device", "cpu", "--log-every", "1",
               timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("step 2/2") == 1  # rank 0 alone prints
    assert (out_dir / "segmenter.safetensors").is_file()
