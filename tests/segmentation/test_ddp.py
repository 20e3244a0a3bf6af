"""The Mean-Teacher loop under DistributedDataParallel: 2 CPU processes with gloo end with identical weights."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from ..conftest import SAMPLE_DATA


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, amvlm_dir, out, seg_cfg):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from napari_amvlm.config import MeanTeacherConfig
    from napari_amvlm.training.events import DoneEvent
    from napari_amvlm.training.mean_teacher import train_mean_teacher

    cfg = MeanTeacherConfig(epochs=1, labeled_batch=2, unlabeled_batch=2)
    try:
        for ev in train_mean_teacher(SAMPLE_DATA / "qata", None, amvlm_dir, out, cfg, seg_cfg,
                                     labeled_fraction=0.4, device="cpu", max_steps=3):
            if isinstance(ev, DoneEvent):
                save_file({k: v.contiguous() for k, v in ev.state.items()}, str(out / f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_end_identical(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), tiny_amvlm_dir, out, tiny_seg_cfg), nprocs=2, join=True)
    a, b = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert set(a) == set(b) and any(k.startswith("teacher.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the ranks really trained: the student moved away from the teacher
    assert any(not torch.equal(a[k], a["teacher." + k[len("student.unet."):]])
               for k in a if k.startswith("student.unet.") and "weight" in k)
