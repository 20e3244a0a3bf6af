"""A real Mean-Teacher round on real QaTa images (tiny model): weights change, the teacher is the EMA."""

from __future__ import annotations

import copy

import pytest
import torch

from napari_amvlm.config import MeanTeacherConfig
from napari_amvlm.model.hub import load_segmenter
from napari_amvlm.training import mean_teacher as mt
from napari_amvlm.training.events import CheckpointEvent, DoneEvent, MetricsEvent, StepEvent

from ..conftest import SAMPLE_DATA

QATA = SAMPLE_DATA / "qata"


def _cfg(**kw):
    base = dict(epochs=1, labeled_batch=2, unlabeled_batch=2, seed=0)
    base.update(kw)
    return MeanTeacherConfig(**base)


def test_round_changes_student_and_teacher_and_teacher_is_ema(tiny_amvlm_dir, tiny_seg_cfg, tmp_path, monkeypatch):
    """Spy on EMATeacher.update: before each update, compute the EMA formula by hand and compare after."""
    from napari_amvlm.training.ema import EMATeacher

    checks = []
    original = EMATeacher.update

    def spy(self, student, step):
        before = {k: v.detach().clone() for k, v in self.module.named_parameters()}
        stud = {k: v.detach().clone() for k, v in student.named_parameters()}
        original(self, student, step)
        a = min(1 - 1 / (step + 1), 0.99)
        for k, v in self.module.named_parameters():
            checks.append(torch.allclose(v, a * before[k] + (1 - a) * stud[k], atol=1e-6))

    monkeypatch.setattr(EMATeacher, "update", spy)
    out = tmp_path / "seg"
    events = list(mt.train_mean_teacher(QATA, QATA, tiny_amvlm_dir, out, _cfg(epochs=2), tiny_seg_cfg,
                                        labeled_fraction=0.4, device="cpu", max_steps=3, val_limit=4))
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert len(steps) == 3 and checks and all(checks)
    assert {"sup/dice", "sup/bce", "text/tg", "text/sup", "unsup", "loss"} <= set(steps[0].losses)
    assert any(isinstance(e, MetricsEvent) for e in events) and isinstance(events[-1], DoneEvent)
    assert any(isinstance(e, CheckpointEvent) and e.kind == "model" for e in events)
    seg = load_segmenter(out)
    torch.manual_seed(0)
    from napari_amvlm.model.unet import UNet

    fresh = UNet(tiny_seg_cfg.unet)
    changed = [not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), seg.unet.state_dict().values())]
    assert any(changed), "the saved teacher equals a fresh initialisation"


def test_no_text_mode_and_explicit_labeled_list(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    from napari_amvlm.data.dataset import read_records

    names = [r.name for r in read_records(QATA)][:3]
    tiny_seg_cfg.use_text = False
    events = list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "nt", _cfg(), tiny_seg_cfg,
                                        labeled_names=names, device="cpu", max_steps=2))
    step = [e for e in events if isinstance(e, StepEvent)][0]
    assert "text/tg" not in step.losses and "unsup" in step.losses
    assert load_segmenter(tmp_path / "nt").textmask is None


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_bad_labeled_fraction_is_a_clear_error_and_writes_nothing(tiny_amvlm_dir, tiny_seg_cfg, tmp_path, fraction):
    out = tmp_path / "bad"
    with pytest.raises(ValueError, match="labeled fraction"):
        list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, out, _cfg(), tiny_seg_cfg,
                                   labeled_fraction=fraction, device="cpu", max_steps=1))
    assert not out.exists() or not any(out.iterdir())


def test_fully_labeled_runs_without_unlabeled_loss(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    events = list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "f", _cfg(), tiny_seg_cfg,
                                        labeled_fraction=1.0, device="cpu", max_steps=1))
    step = [e for e in events if isinstance(e, StepEvent)][0]
    assert "unsup" not in step.losses


def test_missing_model_folder(tiny_seg_cfg, tmp_path):
    from napari_amvlm.model.hub import ModelLoadError

    with pytest.raises(ModelLoadError, match="not found"):
        list(mt.train_mean_teacher(QATA, None, tmp_path / "nope", tmp_path / "o", _cfg(), tiny_seg_cfg,
                                   labeled_fraction=0.5, device="cpu", max_steps=1))


def test_resume_continues_exactly(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    cfg = _cfg(epochs=2)
    a, b = tmp_path / "a", tmp_path / "b"
    list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, a, cfg, tiny_seg_cfg, labeled_fraction=0.4,
                               device="cpu", max_steps=4))
    list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, b, cfg, tiny_seg_cfg, labeled_fraction=0.4,
                               device="cpu", max_steps=2))
    list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, b, copy.deepcopy(cfg), tiny_seg_cfg,
                               labeled_fraction=0.4, device="cpu", max_steps=4, resume=True))
    sa, sb = load_segmenter(a).stage2_state(), load_segmenter(b).stage2_state()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], atol=1e-5), k


def test_supervised_only_uses_no_unlabeled_images(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    tiny_seg_cfg.use_text = False
    events = list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "s", _cfg(unlabeled_batch=0),
                                        tiny_seg_cfg, labeled_fraction=0.4, device="cpu", max_steps=1))
    step = [e for e in events if isinstance(e, StepEvent)][0]
    assert set(step.losses) == {"sup/dice", "sup/bce", "loss"}


def test_init_continues_from_a_trained_segmenter(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    first = tmp_path / "r1"
    list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, first, _cfg(), tiny_seg_cfg, labeled_fraction=0.4,
                               device="cpu", max_steps=1))
    trained = load_segmenter(first).stage2_state()
    events = mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "r2", _cfg(), None, labeled_fraction=0.4,
                                   device="cpu", max_steps=1, init=first)
    start = next(events)  # the StartEvent comes after the weights are loaded, before any step
    assert start.start_step == 0
    gen_state = {}
    for ev in events:
        if isinstance(ev, DoneEvent):
            gen_state = ev.state
    # the round started from r1's weights: one step moved them only a little, a fresh init would be far
    from napari_amvlm.model.unet import UNet

    fresh = UNet(tiny_seg_cfg.unet).state_dict()
    keys = [k for k in trained if k.startswith("unet.") and k.endswith("weight")]
    moved = sum(float((gen_state["teacher." + k[5:]] - trained[k]).abs().sum()) for k in keys)
    from_fresh = sum(float((fresh[k[5:]] - trained[k]).abs().sum()) for k in keys)
    assert moved < 0.1 * from_fresh


def test_labeled_image_without_mask_is_named(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    import csv
    import shutil

    data = tmp_path / "d"
    shutil.copytree(QATA, data)
    rows = list(csv.DictReader(open(data / "text.csv")))
    rows[0]["mask"] = ""  # the first image has no mask
    with open(data / "text.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "mask", "text"])
        w.writeheader()
        w.writerows(rows)
    name = rows[0]["image"].split("/")[-1].rsplit(".", 1)[0]
    out = tmp_path / "o"
    with pytest.raises(ValueError, match=f"without a mask: {name}"):
        list(mt.train_mean_teacher(data, None, tiny_amvlm_dir, out, _cfg(), tiny_seg_cfg, labeled_names=[name],
                                   device="cpu", max_steps=1))
    assert not out.exists() or not any(out.iterdir())


def test_init_unet_starts_student_and_teacher_from_another_run(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    """--init-unet: a supervised-only run's U-Net (its settings too) starts a text-guided run; the text-mask
    generator is new."""
    from dataclasses import replace

    from napari_amvlm.config import UNetConfig

    sup_cfg = replace(tiny_seg_cfg, use_text=False, unet=UNetConfig(base=4, levels=2, downsample=2))
    list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "sup", _cfg(unlabeled_batch=0), sup_cfg,
                               labeled_fraction=0.4, device="cpu", max_steps=2))
    source = load_segmenter(tmp_path / "sup").unet.state_dict()
    events = mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "mt", _cfg(lr=0.0, lr_floor=0.0),
                                   tiny_seg_cfg, labeled_fraction=0.4, device="cpu", max_steps=1, init_unet=tmp_path / "sup")
    done = [e for e in events if isinstance(e, DoneEvent)][0]
    seg = load_segmenter(tmp_path / "mt")
    assert seg.cfg.unet == sup_cfg.unet and seg.textmask is not None
    for k, v in source.items():  # lr 0: the weights are exactly the source's, in the student and the teacher
        if k.endswith(("weight", "bias")):
            assert torch.equal(done.state["student.unet." + k], v) and torch.equal(done.state["teacher." + k], v), k


def test_time_budget_stops_validates_and_writes_the_last_model(tiny_amvlm_dir, tiny_seg_cfg, tmp_path):
    tiny_seg_cfg.use_text = False
    cfg = _cfg(epochs=50, time_budget_s=1e-9, budget_clock="cpu", keep="last")
    events = list(mt.train_mean_teacher(QATA, QATA, tiny_amvlm_dir, tmp_path / "b", cfg, tiny_seg_cfg,
                                        labeled_fraction=0.4, device="cpu", val_limit=2))
    steps = [e for e in events if isinstance(e, StepEvent)]
    metrics = [e for e in events if isinstance(e, MetricsEvent)]
    assert len(steps) == 1 and steps[-1].total_steps == 1  # 100 steps were planned; the budget ended the run
    assert len(metrics) == 1 and metrics[0].metrics["train_s"] > 0
    assert any(isinstance(e, CheckpointEvent) and e.kind == "model" for e in events)
    with pytest.raises(ValueError, match="budget_clock"):
        list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "c", _cfg(budget_clock="gpu"),
                                   tiny_seg_cfg, labeled_fraction=0.4, device="cpu", max_steps=1))


def test_unlabeled_weight_waits_for_the_warmup_then_ramps_up():
    cfg = _cfg(warmup_epochs=2.0, rampup_epochs=1.0, consistency_weight=1.0)
    assert mt.unlabeled_weight(0, 10, cfg) == 0.0 and mt.unlabeled_weight(19, 10, cfg) == 0.0
    assert mt.unlabeled_weight(20, 10, cfg) == pytest.approx(torch.exp(torch.tensor(-5.0)).item(), rel=1e-5)
    assert mt.unlabeled_weight(30, 10, cfg) == 1.0 and mt.unlabeled_weight(25, 10, cfg) < 1.0


def test_short_training_lowers_the_loss_and_raises_dice_on_real_images(tiny_amvlm_dir, tmp_path):
    """Supervised training on the ten real QaTa samples (32 px, a small U-Net): the loss falls and the Dice of the
    trained U-Net on those images rises well above the untrained one's."""
    from napari_amvlm.config import SegmenterConfig, UNetConfig
    from napari_amvlm.evaluation import evaluate

    seg_cfg = SegmenterConfig(use_text=False, unet=UNetConfig(base=8, levels=3))
    cfg = _cfg(epochs=60, labeled_batch=5, unlabeled_batch=0, lr=3e-3, lr_floor=3e-4, lr_schedule="cosine",
               bce="plain")
    torch.manual_seed(0)
    from napari_amvlm.model.hub import load_model
    from napari_amvlm.model.segmenter import TextGuidedSegmenter

    before = evaluate(TextGuidedSegmenter(load_model(tiny_amvlm_dir), seg_cfg), QATA, mode="segmenter").mean_dice
    events = list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "fit", cfg, seg_cfg,
                                        labeled_fraction=1.0, device="cpu"))
    losses = [e.losses["loss"] for e in events if isinstance(e, StepEvent)]
    after = evaluate(load_segmenter(tmp_path / "fit"), QATA, mode="segmenter").mean_dice
    assert len(losses) == 120 and sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert after > before + 20.0, (before, after)


@pytest.mark.parametrize("blend", [0.0, 1.0])
def test_adapt_bn_starts_from_the_training_images_statistics(tiny_amvlm_dir, tiny_seg_cfg, tmp_path, blend):
    """With adapt_bn the round starts from BatchNorm statistics re-estimated over every training image (and each
    mirror with flip averaging); frozen while training, they are those the written teacher holds."""
    from napari_amvlm.data.dataset import ImageTextDataset
    from napari_amvlm.model.batchnorm import reestimate_batchnorm

    tiny_seg_cfg.flip_average = True
    first = tmp_path / "r1"
    list(mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, first, _cfg(), tiny_seg_cfg, labeled_fraction=0.4,
                               device="cpu", max_steps=1))
    start = load_segmenter(first)
    expected = copy.deepcopy(start.unet)
    ds = ImageTextDataset(QATA, size=start.amvlm.cfg.vision.image_size)
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    assert len(ds) <= 16  # one batch, then its mirror (the order the training uses)
    reestimate_batchnorm(expected, iter([images, images.flip(-1)]), blend)
    done = next(e for e in mt.train_mean_teacher(QATA, None, tiny_amvlm_dir, tmp_path / "r2",
                                                 _cfg(freeze_bn=True, adapt_bn=blend), None, labeled_fraction=0.4,
                                                 device="cpu", max_steps=2, init=first) if isinstance(e, DoneEvent))
    stats = [k for k in expected.state_dict() if k.endswith(("running_mean", "running_var"))]
    assert stats
    for k in stats:
        torch.testing.assert_close(done.state["teacher." + k], expected.state_dict()[k], rtol=1e-4, atol=1e-5)
    if blend:
        assert any(not torch.equal(expected.state_dict()[k], start.unet.state_dict()[k]) for k in stats)
