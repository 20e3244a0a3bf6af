"""The package installs as a napari plugin and stays importable without Qt."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_validates():
    npe2 = pytest.importorskip("npe2")
    pm = npe2.PluginManifest.from_distribution("napari-amvlm")
    assert pm.name == "napari-amvlm"
    # the manifest napari finds is the top-level file
    assert Path(pm.package_metadata and __import__("napari_amvlm").__file__).parent.joinpath(
        "napari.yaml"
    ).resolve() == (ROOT / "napari.yaml").resolve()
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-amvlm"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_imports_without_qt():
    code = (
        "import sys, napari_amvlm, napari_amvlm.cli, napari_amvlm.project, napari_amvlm.resources\n"
        "import napari_amvlm._reader, napari_amvlm._sample_data, napari_amvlm.training.rounds\n"
        "from napari_amvlm.cli.main import build_parser\n"
        "build_parser()  # imports every command module\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'napari')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bundled_folders_found():
    from napari_amvlm.resources import models_dir, sample_data_dir

    assert (sample_data_dir() / "qata" / "text.csv").is_file()
    assert (sample_data_dir() / "LICENSE").is_file()
    assert models_dir().is_dir()
