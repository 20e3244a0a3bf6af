"""``amvlm project create|add|status|export|import-masks`` on the shipped QaTa sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from napari_amvlm.cli import main
from napari_amvlm.project import Project, Status

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_QATA = ROOT / "sample_data" / "qata"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["project", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_full_cli_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = tmp_path / "chest.amvlm"
    assert run(capsys, "create", proj, "--name", "chest")[0] == 0
    code, out, _ = run(capsys, "add", proj, SAMPLE_QATA / "images")
    assert code == 0 and "added 10 new images" in out
    code, out, _ = run(capsys, "add", proj, SAMPLE_QATA / "images")  # idempotent
    assert code == 0 and "added 0 new images" in out and "10 in all" in out
    code, out, _ = run(capsys, "import-masks", proj, SAMPLE_QATA / "masks", "--author", "alice")
    assert code == 0 and "imported 10 masks" in out

    code, out, _ = run(capsys, "status", proj, "--json")
    info = json.loads(out)
    assert code == 0 and info["name"] == "chest" and info["images"] == 10
    assert info["status"] == {"unlabeled": 0, "predicted": 0, "corrected": 10}
    code, out, _ = run(capsys, "status", proj, "--status", "corrected")
    lines = out.strip().splitlines()
    assert code == 0 and "10 corrected" in lines[0] and len(lines) == 11
    assert all("\tcorrected\t" in line for line in lines[1:])

    code, out, _ = run(capsys, "export", proj, tmp_path / "out", "--prefix", "mask_")
    assert code == 0 and "wrote 10 human masks" in out
    for original in sorted((SAMPLE_QATA / "masks").iterdir()):
        assert np.array_equal(skio.imread(tmp_path / "out" / original.name), skio.imread(original))
    code, _, err = run(capsys, "export", proj, tmp_path / "out", "--prefix", "mask_")
    assert code == 1 and "exists" in err and len(err.strip().splitlines()) == 1
    assert run(capsys, "export", proj, tmp_path / "out", "--prefix", "mask_", "--overwrite")[0] == 0
    code, out, _ = run(capsys, "export", proj, tmp_path / "pred", "--kind", "prediction", "--format", "tif")
    assert code == 0 and "wrote 0 prediction masks" in out


def test_status_lists_states_and_rounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.numpy import save_file

    project = Project.create(tmp_path / "p")
    a, b, _ = project.add_images([np.full((8, 8), i, np.uint8) for i in range(3)])
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "model.safetensors"))
    model = project.add_model(tmp_path / "model.safetensors").sha256
    project.write_prediction(a, np.ones((8, 8), np.uint8), model=model)
    project.write_prediction(b, np.ones((8, 8), np.uint8), model=model)
    fixed = np.ones((8, 8), np.uint8)
    fixed[:2] = 0  # 16 of 64 pixels changed
    project.mark_corrected(b, fixed, author="alice")
    project.record_round(model=model, settings={"epochs": 1}, seed=3, installed=False,
                         metrics={"heldback_dice_before": 0.7, "heldback_dice_after": 0.65},
                         images={"heldback": [b]})  # fmt: skip
    code, out, _ = run(capsys, "status", project.root, "--list")
    assert code == 0 and "3 images (1 unlabeled, 1 predicted, 1 corrected); 1 models, 1 rounds" in out
    lines = out.splitlines()
    row = lines[[k for k, line in enumerate(lines) if line.startswith("round")][0] + 1].split()
    assert row[:7] == ["1", "1", "25.0", "%", "1", "70.0", "->"] and row[7:] == ["65.0", "kept", "the", "previous"]
    assert f"{a}\tpredicted\t" in out and f"{b}\tcorrected\t" in out
    assert Project.open(project.root).status(a) is Status.PREDICTED  # status changed nothing
    code, out, _ = run(capsys, "status", project.root, "--json")
    (loop,) = json.loads(out)["loop"]
    assert loop["changed"] == 25.0 and loop["dice_before"] == 70.0 and not loop["installed"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["status", "{tmp}/missing"], "no such project folder"),
        (["status", "{tmp}"], "not an annotation project"),
        (["add", "{proj}", "{tmp}/none.png"], "no such image file"),
        (["import-masks", "{proj}", "{tmp}/none", "--author", "a"], "no such mask"),
        (["create", "{proj}"], "not an empty folder"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                  message: str) -> None:  # fmt: skip
    proj = tmp_path / "p.amvlm"
    Project.create(proj)
    code, _, err = run(capsys, *(a.format(tmp=tmp_path, proj=proj) for a in args))
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_project_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["project"])
    assert info.value.code == 2


def test_console_entry_point(tmp_path: Path) -> None:
    proj = tmp_path / "x.amvlm"
    cmd = [sys.executable, "-m", "napari_amvlm.cli", "project"]
    subprocess.run([*cmd, "create", str(proj)], check=True, capture_output=True)
    out = subprocess.run([*cmd, "status", str(proj)], check=True, capture_output=True, text=True).stdout
    assert "0 images" in out
