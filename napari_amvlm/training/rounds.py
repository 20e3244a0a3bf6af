"""Retraining rounds from an annotation project in a separate process (no Qt): what the plugin's Retrain
button runs.

1. :func:`.round_data.prepare_training_folder` exports the project as an ``image,mask,text`` folder.
2. :class:`RetrainJob` starts ``python -m napari_amvlm.cli train --progress-json ...`` as a child process,
   reads its progress events from a pipe on a reader thread (:meth:`RetrainJob.poll` never blocks), and can be
   cancelled (terminate, then kill after a grace period). The child applies :mod:`.child`'s settings first.
3. When the process succeeds, :meth:`RetrainJob.finalize` loads the new model folder (the validation), and
   :mod:`.round_models` moves it to ``<project>/models/round-NNN``, registers its weights and records the
   round in the project store.

The child never opens the project: it reads the exported copy. A crashed or killed process therefore leaves
every human label untouched, and the model currently in use is never written to (the new one goes to a fresh
folder, which is deleted unless it validates).
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from ..device import resolve_device
from ..inference import Segmenter
from ..inference.prompts import read_vocabulary
from ..model.hub import has_segmenter, load_segmenter, read_config
from ..project import Project, Status
from . import child, round_models
from .events import DoneEvent, StepEvent
from .loop import image_prompt
from .progress import parse_event_line
from .round_data import TrainingSet, prepare_training_folder
from .round_guard import GuardVerdict, choose_heldback, judge
from .round_models import RoundResult

PIPE_GRACE_S = 5.0  # how long after the training process ended its output pipes may stay open


@dataclass
class RetrainSettings:
    """How a round trains (passed to ``amvlm train``): a fine-tuning recipe for a few new labels, chosen with the loop
    simulator ``benchmarks/annotation_loop.py`` (docs/RESULTS.md, "The annotation loop")."""

    epochs: int = 20  # passes over the corrected images it trains on (steps = ceil(n / labeled_batch) * epochs)
    labeled_batch: int = 4  # corrected images per step (repeated when there are fewer)
    unlabeled_batch: int = 4  # unlabeled images per step
    max_steps: int | None = None  # stop early after this many steps
    lr: float = 3e-4  # Adam learning rate of the U-Net, decayed by one cosine to lr_floor
    lr_floor: float = 1e-5
    textmask_lr: float = 0.0  # the text-mask decoder learns at this rate (0: kept as it is)
    freeze_bn: bool = True  # BatchNorm statistics stay those of the weights in use while training
    adapt_bn: float = 0.0  # before training, the U-Net's BatchNorm statistics move this far towards their average
    # over the project's images (0: they stay those of the weights in use)
    ema_alpha: float = 0.99  # EMA decay of the teacher from the first step (the weights written are the teacher's)
    consistency_weight: float = 1.0  # weight of the loss on the unlabeled images (their text-fused pseudo-labels)
    supervised_only: bool = False  # train on the corrected images alone, no unlabeled images or text pseudo-labels
    # (the floor a round is compared with)
    holdout: float = 0.2  # share of the corrected images held back to judge the new weights (at least one)
    max_holdout: int = 20  # at most this many held back
    device: str = "auto"  # auto | cpu | cuda | mps
    seed: int = 0
    cpu_threads: int | None = None  # torch threads of the child; None = every core (it runs niced: the viewer
    # still gets the CPU first; measured in benchmarks/ui_round.py)
    nice: int = 10  # POSIX niceness added to the child, so the viewer wins the CPU whenever it needs it

    def train_arguments(self) -> list[str]:
        """The ``amvlm train`` options of the recipe (not the data, model or output folders)."""
        args = ["--epochs", str(self.epochs), "--labeled-batch", str(self.labeled_batch),
                "--unlabeled-batch", str(self.unlabeled_batch), "--seed", str(self.seed), "--device", self.device,
                "--lr", repr(self.lr), "--lr-floor", repr(self.lr_floor), "--schedule", "cosine", "--bce", "plain",
                "--textmask-lr", repr(self.textmask_lr), "--ema-alpha", repr(self.ema_alpha), "--no-ema-warmup",
                "--rampup-epochs", "0", "--keep", "last", "--consistency-weight", repr(self.consistency_weight),
                "--adapt-bn", repr(self.adapt_bn)]
        if self.freeze_bn:
            args.append("--freeze-bn")
        if self.supervised_only:
            args.append("--supervised-only")
        if self.max_steps:
            args += ["--max-steps", str(self.max_steps)]
        return args


class JobState(str, Enum):
    """Where a training round is."""

    NEW = "new"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the process exited 0 with a model folder; call finalize()
    FAILED = "failed"  # crashed, killed from outside, or refused its input
    CANCELLED = "cancelled"  # stopped by cancel()


_RUNNING: set[RetrainJob] = set()  # jobs whose process may still run (ended at interpreter exit)


@atexit.register
def _end_all_jobs() -> None:
    for job in list(_RUNNING):
        job.cancel(wait=True)


class RetrainJob:
    """One training round of a project in a child process. Start it from a thread that outlives it (the GUI
    thread): on Linux the child is told to end when that thread ends."""

    def __init__(self, project: Project, base_model: str | os.PathLike, settings: RetrainSettings | None = None,
                 default_prompt: str | None = None, python: str | None = None) -> None:
        self.project = project
        self.base_model = Path(base_model)
        self.settings = settings or RetrainSettings()
        self.default_prompt = default_prompt
        self.python = python or sys.executable
        self.state = JobState.NEW
        self.round_index = len(project.rounds()) + 1
        self.events: list[object] = []  # every event received so far
        self.last_step: StepEvent | None = None
        self.returncode: int | None = None
        self.message = ""  # why it failed, in one line
        self.training_set: TrainingSet | None = None
        self.heldback: list[str] = []  # corrected images left out of training, to judge the new weights with
        self.verdict: GuardVerdict | None = None  # how the new weights did on them (after finalize)
        self.out_dir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._queue: queue.Queue = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=40)
        self._threads: list[threading.Thread] = []
        self._tmp: Path | None = None
        self._cancelled = False
        self._kill_at: float | None = None
        self._exited_at: float | None = None  # when poll first saw the process ended
        self._waited = False  # the pipe readers were joined (a blocking caller): poll finishes at once

    # ---------------------------------------------------------------------------------------- start
    def command(self) -> list[str]:
        """The ``amvlm train`` command line of this round (after :meth:`start` prepared the folder)."""
        ts = self.training_set
        assert ts is not None and self.out_dir is not None
        cmd = [self.python, "-P", "-m", "napari_amvlm.cli", "train", "--progress-json",  # -P: see child.py
               "--data", str(ts.folder.resolve()), "--model", str(self.base_model.resolve()),
               "--out", str(self.out_dir.resolve()), *self.settings.train_arguments()]
        if has_segmenter(self.base_model):
            cmd += ["--init", str(self.base_model.resolve())]  # each round builds on the weights in use
        return cmd + ["--labeled", "--", *ts.labeled]  # ids last, after "--": never read as options

    def start(self) -> None:
        """:meth:`prepare` then :meth:`launch`. Raises ValueError for unusable input (before any process)."""
        self.prepare()
        self.launch()

    def prepare(self, stop: threading.Event | None = None) -> TrainingSet:
        """Check the base model and export the project (may take a while: any thread may run it; ``stop`` ends
        the export between images)."""
        if self.state is not JobState.NEW or self.training_set is not None:
            raise RuntimeError("this round was already prepared")
        read_config(self.base_model)  # a clear ModelLoadError for a folder that is not a model
        self.heldback = self._choose_heldback()
        self._tmp = Path(tempfile.mkdtemp(prefix="amvlm-round-"))
        try:
            self.training_set = prepare_training_folder(self.project, self._tmp / "data", self.default_prompt, stop,
                                                        exclude=self.heldback)
        except BaseException:
            self.discard()
            raise
        return self.training_set

    def _choose_heldback(self) -> list[str]:
        """The corrected images (with a prompt) this round holds back to judge its weights."""
        self.project.refresh()
        usable = [i for i in self.project.image_ids(Status.CORRECTED)
                  if image_prompt(self.project, i, self.default_prompt or "") is not None]
        if not usable:
            raise ValueError("no corrected image yet: correct at least one mask and press 'Mark corrected' first")
        s = self.settings
        return choose_heldback(usable, self.round_index, s.holdout, s.max_holdout, s.seed)

    def launch(self) -> None:
        """Start the training process (call from a thread that outlives it, e.g. the GUI thread)."""
        if self.state is not JobState.NEW or self.training_set is None:
            raise RuntimeError("prepare() the round before launching it, and launch it once")
        self.out_dir = round_models.partial_folder(self.project, self.round_index)
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1, env=self._child_env(), cwd=self._tmp,  # (a folder of its own: nothing there to import)
        )  # fmt: skip
        self.state = JobState.RUNNING
        _RUNNING.add(self)
        for target, stream in ((self._read_stdout, self._proc.stdout), (self._read_stderr, self._proc.stderr)):
            t = threading.Thread(target=target, args=(stream,), daemon=True, name="amvlm-retrain-pipe")
            t.start()
            self._threads.append(t)

    def discard(self) -> None:
        """Remove the exported training folder of a round that will not be launched."""
        if self.state is JobState.NEW:
            self._remove_export()

    def _remove_export(self) -> None:
        """Delete the exported training folder, off the caller's thread (the GUI's: hundreds of files)."""
        if self._tmp is not None:
            threading.Thread(target=shutil.rmtree, args=(self._tmp,), kwargs={"ignore_errors": True},
                             name="amvlm-round-cleanup", daemon=False).start()
            self._tmp = None

    def _child_env(self) -> dict[str, str]:
        env = dict(child.environment(), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        env[child.NICE_ENV], env[child.PARENT_ENV] = str(self.settings.nice), str(os.getpid())
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if self.settings.cpu_threads:
                env[var] = str(self.settings.cpu_threads)
            else:
                env.setdefault(var, str(os.cpu_count() or 1))
        return env

    def _read_stdout(self, stream) -> None:
        for line in stream:
            event = parse_event_line(line)
            if event is not None:
                self._queue.put(event)
        stream.close()

    def _read_stderr(self, stream) -> None:
        for line in stream:
            if line.strip():
                self._stderr.append(line.rstrip())
        stream.close()

    # ------------------------------------------------------------------------------------- progress
    @property
    def running(self) -> bool:
        return self.state is JobState.RUNNING

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def poll(self) -> list[object]:
        """New events since the last call (never blocks for long); updates :attr:`state` when the process ended."""
        new = self._drain()
        if self.state is not JobState.RUNNING or self._proc is None:
            return new
        if self._kill_at is not None and time.monotonic() >= self._kill_at:
            self._proc.kill()
        rc = self._proc.poll()
        if rc is None:
            return new
        # the process has ended; its last lines may still be in the pipes: finish once both readers reached the
        # end of their pipe (checked, never waited for: this runs on the GUI thread), or after a grace period
        # in case something else still holds a pipe open
        now = time.monotonic()
        if self._exited_at is None:
            self._exited_at = now
        if any(t.is_alive() for t in self._threads) and now - self._exited_at < PIPE_GRACE_S and not self._waited:
            return new
        new += self._drain()
        self._finish(rc)
        return new

    def _drain(self) -> list[object]:
        out = []
        while True:
            try:
                ev = self._queue.get_nowait()
            except queue.Empty:
                break
            out.append(ev)
            if isinstance(ev, StepEvent):
                self.last_step = ev
        self.events.extend(out)
        return out

    def _finish(self, rc: int) -> None:
        self.returncode = rc
        _RUNNING.discard(self)
        done = any(isinstance(e, DoneEvent) for e in self.events)
        if self._cancelled:
            self.state, self.message = JobState.CANCELLED, "training cancelled; the previous weights are kept"
        elif rc == 0 and done and self.out_dir is not None and has_segmenter(self.out_dir):
            self.state = JobState.SUCCEEDED
        else:
            self.state, self.message = JobState.FAILED, self._failure_message(rc)
        if self.state is not JobState.SUCCEEDED:
            self._discard_output()
        self._remove_export()

    def _failure_message(self, rc: int) -> str:
        errors = [line for line in self._stderr if "error" in line.lower()]
        detail = (errors or list(self._stderr) or ["no output"])[-1]
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        return f"the training process {how} ({detail}); the previous weights and all labels are kept"

    def _discard_output(self) -> None:
        if self.out_dir is not None:
            shutil.rmtree(self.out_dir, ignore_errors=True)

    def wait(self, timeout: float | None = None) -> JobState:
        """Block until the process ends (tests, scripts); returns the final state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            self.poll()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"training round still running after {timeout} s")
            time.sleep(0.05)
        return self.state

    def cancel(self, grace_s: float = 3.0, wait: bool = False) -> None:
        """Stop the process: SIGTERM now, SIGKILL after ``grace_s`` (on a later :meth:`poll`, or here when
        ``wait``)."""
        if self._proc is None or self.state is not JobState.RUNNING:
            return
        self._cancelled = True
        if self._proc.poll() is None:
            self._proc.terminate()
            self._kill_at = time.monotonic() + grace_s
        if wait:
            try:
                self._proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for t in self._threads:
                t.join(timeout=1.0)
            self._waited = True
            self.poll()

    # ------------------------------------------------------------------------------------- finalize
    def finalize(self, device: str = "cpu") -> RoundResult:
        """Validate the new model (it must load), judge it against the weights in use on the held-back corrected
        images, and install it as ``models/round-NNN`` only if it does at least as well (otherwise its folder is
        deleted); the round is recorded either way, with both figures.

        May take a few seconds (it loads both models): call it off the GUI thread. Raises ModelLoadError if the
        folder does not load (it is then deleted and nothing is recorded).
        """
        if self.state is not JobState.SUCCEEDED or self.out_dir is None:
            raise RuntimeError(f"nothing to finalize: the round is {self.state.value}")
        dev = resolve_device(device)
        try:
            seg = load_segmenter(self.out_dir, dev)
        except ValueError as err:
            self._discard_output()
            self.state, self.message = JobState.FAILED, f"the new model does not load ({err}); previous weights kept"
            raise
        candidate = Segmenter(seg, dev, vocabulary=read_vocabulary(self.out_dir))
        current = Segmenter.from_folder(self.base_model, dev)
        self.verdict = judge(self.project, self.heldback, current, candidate, self.default_prompt or "")
        self.message = self.verdict.line(self.round_index)
        if self.verdict.install:
            self.out_dir = round_models.install(self.out_dir, self.round_index)
        ts = self.training_set
        images = {"labeled": ts.labeled, "unlabeled": ts.unlabeled} if ts else {}
        result = round_models.record(
            self.project, self.out_dir, base_model=self.base_model, settings=asdict(self.settings),
            seed=self.settings.seed, last_step=self.last_step, segmenter=seg,
            images={**images, "heldback": self.heldback}, verdict=self.verdict,
        )  # fmt: skip
        if not self.verdict.install:
            self._discard_output()
        return result
