"""EMA teacher: exact copy at start, the update formula on hand-computed values, buffers, state dicts."""

import pytest
import torch
from torch import nn

from napari_amvlm.config import UNetConfig
from napari_amvlm.model.unet import UNet
from napari_amvlm.training.ema import EMATeacher, ema_decay


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Conv2d(2, 1, 1))


def fill(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_teacher_starts_as_exact_copy_and_is_frozen():
    student = UNet(UNetConfig(base=4, levels=2))
    student(torch.rand(2, 3, 8, 8)).sum().backward()  # student has gradients and BN statistics
    ema = EMATeacher(student)
    s_state, t_state = student.state_dict(), ema.state_dict()
    assert s_state.keys() == t_state.keys()
    for name in s_state:
        assert torch.equal(s_state[name], t_state[name]), name
        assert t_state[name].data_ptr() != s_state[name].data_ptr(), f"{name} shares memory"
    for p in ema.module.parameters():
        assert not p.requires_grad and p.grad is None
    assert not ema.module.training


@pytest.mark.parametrize("step,expected", [(0, 0.0), (1, 0.5), (3, 0.75), (9, 0.9), (99, 0.99), (10_000, 0.99)])
def test_decay_formula(step, expected):
    assert ema_decay(step) == pytest.approx(expected, abs=1e-12)
    assert ema_decay(step, alpha_max=0.5) == min(expected, 0.5)


def test_decay_rejects_bad_arguments():
    with pytest.raises(ValueError, match="step"):
        ema_decay(-1)
    with pytest.raises(ValueError, match="alpha_max"):
        EMATeacher(small_net(), alpha_max=1.0)


def test_update_hand_computed():
    """Teacher 1, student 0: step 3 -> a = 0.75 -> 0.75; then student 2, step 1 -> 0.5*0.75 + 0.5*2 = 1.375."""
    student = small_net()
    fill(student, 1.0)
    ema = EMATeacher(student)
    fill(student, 0.0)
    assert ema.update(student, step=3) == 0.75
    for p in ema.module.parameters():
        assert torch.equal(p, torch.full_like(p, 0.75))
    fill(student, 2.0)
    ema.update(student, step=1)
    for p in ema.module.parameters():
        assert torch.equal(p, torch.full_like(p, 1.375))


def test_update_random_weights_matches_formula():
    student = small_net()
    ema = EMATeacher(student)
    before = {k: v.clone() for k, v in ema.module.named_parameters()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    a = ema.update(student, step=7)
    assert a == 1 - 1 / 8
    s = dict(student.named_parameters())
    for name, p in ema.module.named_parameters():
        torch.testing.assert_close(p, a * before[name] + (1 - a) * s[name], rtol=1e-6, atol=1e-7)


def test_step_zero_copies_student_and_alpha_is_capped():
    student = small_net()
    ema = EMATeacher(student)
    fill(student, 3.0)
    ema.update(student, step=0)
    assert all(torch.equal(p, torch.full_like(p, 3.0)) for p in ema.module.parameters())
    fill(student, 0.0)
    assert ema.update(student, step=1_000_000) == 0.99
    for p in ema.module.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.99 * 3.0), rtol=1e-6, atol=0)


def test_buffers_are_the_teachers_own():
    """The student's BN statistics describe other weights: they are not copied. The teacher's own forward passes
    with update_stats fold its batch statistics into its running ones, and leave it in eval mode."""
    student = small_net().train()
    ema = EMATeacher(student)
    start = {k: v.clone() for k, v in ema.module.named_buffers()}
    student(torch.rand(4, 1, 6, 6) * 5 + 2)  # moves the student's BN running statistics
    ema.update(student, step=50)
    for name, b in ema.module.named_buffers():
        assert torch.equal(b, start[name]), name
    x = torch.rand(8, 1, 6, 6) * 3 - 1
    out = ema(x, update_stats=True)
    assert not ema.module.training and not out.requires_grad
    mean = dict(ema.module.named_buffers())["1.running_mean"]
    h = ema.module[0](x)  # the conv before the BatchNorm
    torch.testing.assert_close(mean, 0.9 * start["1.running_mean"] + 0.1 * h.mean((0, 2, 3)))
    assert int(dict(ema.module.named_buffers())["1.num_batches_tracked"]) == 1
    torch.testing.assert_close(ema(x), ema.module(x))  # without update_stats: eval mode, buffers unchanged
    assert torch.equal(dict(ema.module.named_buffers())["1.running_mean"], mean)


def test_call_forwards_to_teacher_and_state_dict_round_trip():
    student = small_net().eval()
    ema = EMATeacher(student)
    x = torch.rand(2, 1, 5, 5)
    torch.testing.assert_close(ema(x), student(x))
    fill(student, 0.1)
    ema.update(student, step=4)
    state = {k: v.clone() for k, v in ema.state_dict().items()}
    other = EMATeacher(small_net())
    other.load_state_dict(state)
    torch.testing.assert_close(other(x), ema(x))
    assert not any(p.requires_grad for p in other.module.parameters())


def test_mismatched_student_is_a_clear_error():
    ema = EMATeacher(small_net())
    with pytest.raises(ValueError, match="do not match the teacher"):
        ema.update(nn.Sequential(nn.Conv2d(1, 2, 3)), step=1)
