"""The loop simulator (benchmarks/annotation_loop.py) on a tiny pile of real images: one round of each arm through
the real project store, RetrainJob and Segmenter, then its table, JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, SAMPLE_DATA


@pytest.mark.slow
def test_the_simulator_runs_a_round_and_writes_its_table_and_plot(tmp_path):
    out = tmp_path / "loop"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "annotation_loop.py"), "--model", str(ROOT / "models" / "amvlm-qata"),
           "--pile", str(SAMPLE_DATA / "qata"), "--per-round", "3", "--rounds", "1", "--arms", "none", "supervised",
           "round", "--set", "max_steps=2", "--work", str(tmp_path / "work"), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Dice uncorrected" in res.stdout and "edit effort %" in res.stdout
    data = json.loads(out.with_suffix(".json").read_text())
    rows = data["rows"]
    assert set(rows) == {"none", "supervised", "round"} and all(len(r) == 2 for r in rows.values())
    for arm, (before, after) in rows.items():
        assert before["corrected"] == 0 and after["corrected"] == 3 and len(after["dice"]) == 7
        assert len(after["effort"]) == 3 and all(0 <= e <= 100 for e in after["effort"])
        assert (after["installed"] is None) == (arm == "none") and (after["round_s"] or 0) >= 0
    # the order is the widget's: the first round corrects the same (most uncertain) images in every arm
    assert rows["none"][1]["dice"].keys() == rows["round"][1]["dice"].keys()
    assert rows["none"][1]["effort"] == rows["round"][1]["effort"]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"round", "corrected", "arm", "vs none"} <= set(data["table"][0])
