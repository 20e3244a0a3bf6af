"""Retraining rounds in a separate process (no Qt): success, validation and recording, cancel, a killed
process, the child's priority, pipes held open."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest

from napari_amvlm.model.hub import ModelLoadError, load_segmenter
from napari_amvlm.project import Project
from napari_amvlm.training import round_guard, rounds
from napari_amvlm.training.events import StepEvent
from napari_amvlm.training.round_models import latest_round_model
from napari_amvlm.training.rounds import JobState, RetrainJob, RetrainSettings

from .conftest import QATA_IMAGES


@pytest.fixture
def tiny_seg_dir(tiny_cfg, tiny_seg_cfg, tmp_path):
    """A tiny trained-format model folder (AMVLM + segmenter), random weights."""
    import torch

    from napari_amvlm.model.amvlm import AMVLM
    from napari_amvlm.model.hub import save_segmenter
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    torch.manual_seed(0)
    return save_segmenter(TextGuidedSegmenter(AMVLM(tiny_cfg).eval(), tiny_seg_cfg), tmp_path / "tiny-seg")


def _human_labels(p: Project) -> dict[str, bytes]:
    return {i: np.asarray(p.read_mask(i, "human")[...]).tobytes() for i in p.image_ids("corrected")}


def _settings(**kw) -> RetrainSettings:
    base = {"epochs": 2, "labeled_batch": 2, "unlabeled_batch": 2, "device": "cpu", "cpu_threads": 1}
    return RetrainSettings(**{**base, **kw})


def _wait_for(job: RetrainJob, kind: type, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(isinstance(e, kind) for e in job.events):
        job.poll()
        assert job.running, f"the process ended early: {job.message}"
        assert time.monotonic() < deadline, f"no {kind.__name__} after {timeout} s"
        time.sleep(0.05)


def test_zero_corrected_images_is_a_clear_error(tmp_path, tiny_seg_dir):
    p = Project.create(tmp_path / "empty")
    p.add_images(QATA_IMAGES[:1])
    with pytest.raises(ValueError, match="no corrected image"):
        RetrainJob(p, tiny_seg_dir, _settings()).start()
    assert not (p.root / "models").exists() or not any((p.root / "models").iterdir())


def test_not_a_model_folder_is_refused_before_any_process(project, tmp_path):
    job = RetrainJob(project, tmp_path, _settings())
    with pytest.raises(ModelLoadError):
        job.start()
    assert job.pid is None and job.state is JobState.NEW


def test_round_succeeds_validates_and_records(project, tiny_seg_dir, monkeypatch):
    labels = _human_labels(project)
    base_bytes = (tiny_seg_dir / "segmenter.safetensors").read_bytes()
    job = RetrainJob(project, tiny_seg_dir, _settings(max_steps=2))
    job.start()
    cmd = job.command()
    assert "--progress-json" in cmd and cmd[cmd.index("--init") + 1] == str(tiny_seg_dir)  # builds on the weights in use
    assert job.wait(timeout=180) is JobState.SUCCEEDED, job.message
    steps = [e for e in job.events if isinstance(e, StepEvent)]
    assert [s.step for s in steps] == [1, 2] and "loss" in steps[-1].losses
    assert len(job.heldback) == 1 and job.heldback[0] in project.image_ids("corrected")
    assert cmd[cmd.index("--labeled") + 2:] == job.training_set.labeled
    assert job.heldback[0] not in job.training_set.labeled + job.training_set.unlabeled  # never trained on
    monkeypatch.setattr(round_guard.GuardVerdict, "install", property(lambda self: True))  # random weights
    result = job.finalize("cpu")
    assert result.installed and "held-back" in result.message
    assert result.index == 1 and result.folder == project.root / "models" / "round-001"
    assert not (result.folder / "resume.safetensors").exists()
    assert load_segmenter(result.folder) is not None and result.segmenter is not None
    (rnd,) = Project.open(project.root).rounds()
    assert rnd.model == result.model_sha and rnd.base_model is not None and "loss" in rnd.metrics
    assert sorted(rnd.images["labeled"] + rnd.images["heldback"]) == sorted(project.image_ids("corrected"))
    assert {"heldback_dice_before", "heldback_dice_after"} <= rnd.metrics.keys() and rnd.installed
    assert latest_round_model(Project.open(project.root)) == result.folder
    assert _human_labels(Project.open(project.root)) == labels
    assert (tiny_seg_dir / "segmenter.safetensors").read_bytes() == base_bytes
    assert not list((project.root / "models").glob(".round-*"))


def test_cancel_stops_within_seconds_and_keeps_everything(project, tiny_seg_dir):
    labels = _human_labels(project)
    job = RetrainJob(project, tiny_seg_dir, _settings(epochs=10_000))
    job.start()
    _wait_for(job, StepEvent)
    t0 = time.monotonic()
    job.cancel()
    while job.running:
        job.poll()
        time.sleep(0.02)
    stop_s = time.monotonic() - t0
    print(f"\ncancel -> process ended in {stop_s:.2f} s")
    assert job.state is JobState.CANCELLED and stop_s < 5.0
    assert not list((project.root / "models").iterdir())  # the partial model folder is gone
    assert Project.open(project.root).rounds() == [] and _human_labels(Project.open(project.root)) == labels
    with pytest.raises(RuntimeError):
        job.finalize()


def test_killed_process_fails_cleanly(project, tiny_seg_dir):
    labels = _human_labels(project)
    job = RetrainJob(project, tiny_seg_dir, _settings(epochs=10_000))
    job.start()
    _wait_for(job, StepEvent)
    os.kill(job.pid, signal.SIGKILL)
    assert job.wait(timeout=30) is JobState.FAILED
    assert "killed by signal 9" in job.message and "labels are kept" in job.message
    assert not list((project.root / "models").iterdir())
    assert Project.open(project.root).rounds() == [] and _human_labels(Project.open(project.root)) == labels


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_training_process_lowers_its_own_priority(project, tiny_seg_dir):
    """The round's process gets its niceness through the environment (no preexec_fn, so no full fork of the
    viewer) and applies it first thing."""
    import subprocess

    env = RetrainJob(project, tiny_seg_dir, _settings())._child_env()
    assert env["AMVLM_NICE"] == "10" and env["AMVLM_PARENT_PID"] == str(os.getpid())
    code = ("import os; from napari_amvlm.training import child; before = os.getpriority(os.PRIO_PROCESS, 0); "
            "child.apply_from_env(); print(os.getpriority(os.PRIO_PROCESS, 0) - before, "
            "'AMVLM_NICE' in os.environ)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    raised = min(10, 19 - os.getpriority(os.PRIO_PROCESS, 0))  # niceness stops at 19 (a suite run niced itself)
    assert out.stdout.split() == [str(raised), "False"]


def test_poll_never_waits_for_a_pipe_held_open(project, tiny_seg_dir, monkeypatch):
    """The training process has ended but a process it started still holds its output open: poll (run on the
    GUI thread) returns at once, and the round ends after the grace period."""
    monkeypatch.setattr(rounds, "PIPE_GRACE_S", 1.0)
    job = RetrainJob(project, tiny_seg_dir, _settings())
    job.prepare()
    holder = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(4)'])"
    monkeypatch.setattr(job, "command", lambda: [sys.executable, "-c", holder])
    job.launch()
    job._proc.wait(timeout=30)
    t0 = time.monotonic()
    job.poll()
    assert time.monotonic() - t0 < 0.1 and job.running  # the reader is still blocked on the open pipe
    deadline = time.monotonic() + 10
    while job.running and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.02)
    assert job.state is JobState.FAILED and time.monotonic() - t0 < 3.0  # no DoneEvent: a failed round


def test_round_recipe_reaches_the_training_command_as_set():
    """Every RetrainSettings field that shapes training arrives in `amvlm train`'s options with its value."""
    from napari_amvlm.cli.main import build_parser

    s = RetrainSettings(epochs=7, lr=2e-4, lr_floor=2e-6, textmask_lr=1e-5, ema_alpha=0.95, consistency_weight=0.25,
                        labeled_batch=3, unlabeled_batch=5, max_steps=11, seed=4, freeze_bn=False, adapt_bn=0.5)
    a = build_parser().parse_args(["train", "--data", "d", "--model", "m", "--out", "o", "--labeled-fraction", "1",
                                   *s.train_arguments()])
    assert (a.epochs, a.lr, a.lr_floor, a.textmask_lr, a.ema_alpha, a.consistency_weight) == (7, 2e-4, 2e-6, 1e-5,
                                                                                              0.95, 0.25)
    assert (a.labeled_batch, a.unlabeled_batch, a.max_steps, a.seed, a.freeze_bn, a.adapt_bn) == (3, 5, 11, 4, False,
                                                                                                   0.5)
    assert (a.schedule, a.bce, a.keep, a.rampup_epochs, a.no_ema_warmup) == ("cosine", "plain", "last", 0, True)
    assert not a.supervised_only
    assert build_parser().parse_args(["train", "--data", "d", "--model", "m", "--out", "o", "--labeled-fraction", "1",
                                      *RetrainSettings(supervised_only=True).train_arguments()]).supervised_only
