"""Commits survive SIGKILL at any moment: a writer process is killed again and again mid-transaction."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from napari_amvlm.project import Project

from ._helpers import ROOT, array_dirs

WRITER = r"""
import sys
import numpy as np
from napari_amvlm.project import Project

def mask_for(step):
    m = np.zeros((64, 64), np.uint8)
    m[: step % 64 + 1, : (7 * step) % 64 + 1] = 1
    return m

project = Project.open(sys.argv[1])
model = project.models()[0].sha256
ids = project.image_ids()[:4]
step = sum(len(project.prompts(i)) for i in ids)  # one prompt per committed step
print("ready", step, flush=True)
while True:
    step += 1
    image_id = ids[step % 4]
    with project.transaction():  # one commit per step
        project.write_prediction(image_id, mask_for(step), model=model, prompt=f"step {step}")
        if step % 3 == 0:
            project.mark_corrected(image_id, mask_for(step) * 255, author="writer", note=f"step {step}")
        if step % 5 == 0:
            project.add_image(np.full((300, 300), step, np.uint16), name=f"s{step}")
    print(step, flush=True)
"""


def _mask_for(step: int) -> np.ndarray:
    m = np.zeros((64, 64), np.uint8)
    m[: step % 64 + 1, : (7 * step) % 64 + 1] = 1
    return m


def _check_committed_state(root: Path, steps: int) -> None:
    """The store holds exactly steps 1..``steps``, each whole, and every array it names is readable."""
    p = Project.open(root)
    ids = p.image_ids()[:4]
    assert len(p) == 4 + steps // 5
    for k, image_id in enumerate(ids):
        mine = [s for s in range(1, steps + 1) if s % 4 == k]
        assert [x.text for x in p.prompts(image_id)] == [f"step {s}" for s in mine]
        if mine:
            assert p.mask_record(image_id, "prediction").provenance.prompt == f"step {mine[-1]}"
            assert np.array_equal(p.read_mask(image_id, "prediction")[...], _mask_for(mine[-1]))
        human = [s for s in mine if s % 3 == 0]
        assert len(p.human_history(image_id)) == max(len(human) - 1, 0)
        if human:
            assert np.array_equal(p.read_mask(image_id, "human")[...], _mask_for(human[-1]))
            assert p.mask_record(image_id, "human").foreground == 255
    for s in range(5, steps + 1, 5):
        image_id = p.find_by_name(f"s{s}")
        assert image_id is not None and int(p.read_image(image_id)[299, 299]) == s


def test_sigkill_at_any_moment_leaves_last_commit(project: Project, model: str, tmp_path: Path) -> None:
    for i in range(4):
        project.add_image(np.full((64, 64), i, np.uint8), name=f"base{i}")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(0)
    acked, torn_kills, kills = 0, 0, 24
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, str(script), str(project.root)], stdout=subprocess.PIPE,
                                text=True, cwd=ROOT)  # fmt: skip
        ready = proc.stdout.readline().split()
        assert ready and ready[0] == "ready", "writer failed to start"
        assert int(ready[1]) == acked  # the writer resumes from the last commit
        first = proc.stdout.readline()  # one commit at least, however busy the machine is
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        lines = [int(x) for x in (first + out).split()]
        acked = lines[-1] if lines else acked  # commits the writer reported before it died
        torn_kills += bool(array_dirs(project) - Project.open(project.root)._referenced_arrays())
        steps = Project.open(project.root)
        committed = sum(len(steps.prompts(i)) for i in steps.image_ids()[:4])
        # the last commit is there; at most one more (committed, but killed before it could report)
        assert committed in (acked, acked + 1), (committed, acked)
        acked = committed
        _check_committed_state(project.root, committed)
    assert acked >= kills, "the writer hardly committed anything"
    assert torn_kills > 0, "no kill landed in the middle of a write"
    final = Project.open(project.root)
    final.add_prompt(final.image_ids()[0], "after the crashes", author="alice")
    assert array_dirs(final) == final._referenced_arrays()  # half-written arrays were cleaned up
