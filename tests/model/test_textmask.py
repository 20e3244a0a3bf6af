"""The text-mask generator's position prior: learned maps for the regions a sentence's position words name."""

from __future__ import annotations

import torch

from napari_amvlm.config import TextMaskConfig
from napari_amvlm.data.text import POSITION_CELLS
from napari_amvlm.model.textmask import PRIOR_GAIN, TextMaskGenerator

LOWER_LEFT = "Unilateral pulmonary infection, one infected area, lower left lung."
LOWER_RIGHT = "Unilateral pulmonary infection, one infected area, lower right lung."
NO_SIDE = "Bilateral pulmonary infection."


def _gen(prior: bool = True) -> TextMaskGenerator:
    torch.manual_seed(0)
    return TextMaskGenerator(16, TextMaskConfig(hidden=8, upsample=2, position_prior=prior, prior_grid=4)).eval()


def _inputs(b: int):
    torch.manual_seed(1)
    tokens = torch.randn(b, 16, 16)
    sentence = torch.nn.functional.normalize(torch.randn(b, 16), dim=1)
    return tokens, (4, 4), sentence


def test_a_zero_prior_changes_nothing():
    with_prior, without = _gen(True), _gen(False)
    without.load_state_dict({k: v for k, v in with_prior.state_dict().items() if k != "prior"})
    tokens, grid, sentence = _inputs(2)
    a = with_prior(tokens, grid, sentence, (16, 16), [LOWER_LEFT, NO_SIDE]).logits
    b = without(tokens, grid, sentence, (16, 16), [LOWER_LEFT, NO_SIDE]).logits
    assert torch.equal(a, b)


def test_prior_is_the_smooth_max_of_the_named_maps():
    gen = _gen()
    with torch.no_grad():
        gen.prior.copy_(torch.arange(len(POSITION_CELLS), dtype=torch.float32)[:, None, None].expand(-1, 4, 4) / 10)
    both = "upper middle lower left lung and lower right lung."
    out = gen.position_logits([LOWER_LEFT, both, NO_SIDE], (4, 4))
    vals = PRIOR_GAIN * torch.arange(len(POSITION_CELLS), dtype=torch.float32) / 10
    ll, lr = POSITION_CELLS.index("lower left"), POSITION_CELLS.index("lower right")
    assert torch.allclose(out[0], vals[ll].expand(1, 4, 4))
    assert torch.allclose(out[1], torch.logsumexp(vals[[0, 1, 2, lr]], 0).expand(1, 4, 4))
    assert torch.equal(out[2], torch.zeros(1, 4, 4))  # no position word: no prior


def test_only_the_named_maps_learn():
    gen = _gen().train()
    tokens, grid, sentence = _inputs(1)
    gen(tokens, grid, sentence, (16, 16), [LOWER_LEFT]).logits.sum().backward()
    moved = (gen.prior.grad.abs().flatten(1).sum(1) > 0).tolist()
    assert moved == [name == "lower left" for name in POSITION_CELLS]


def test_a_learned_prior_puts_the_mask_on_the_named_side():
    gen = _gen()
    left = POSITION_CELLS.index("lower left")
    right = POSITION_CELLS.index("lower right")
    with torch.no_grad():  # what training learns: each side's map is high on its own half of the image
        gen.scale.fill_(1.0)  # a random image term of a few logits, below the prior's
        gen.prior.fill_(-4 / PRIOR_GAIN)
        gen.prior[left, :, :2] = 4 / PRIOR_GAIN
        gen.prior[right, :, 2:] = 4 / PRIOR_GAIN
    tokens, grid, sentence = _inputs(1)
    for text, side in ((LOWER_LEFT, slice(0, 8)), (LOWER_RIGHT, slice(8, 16))):
        prob = gen(tokens, grid, sentence, (16, 16), [text]).prob[0, 0]
        other = slice(8, 16) if side.start == 0 else slice(0, 8)
        assert prob[:, side].mean() > prob[:, other].mean() + 0.5


def test_sentence_count_must_match():
    gen = _gen()
    tokens, grid, sentence = _inputs(2)
    try:
        gen(tokens, grid, sentence, (16, 16), [LOWER_LEFT])
    except ValueError as err:
        assert "1 sentences for 2 images" in str(err)
    else:
        raise AssertionError("a missing sentence was accepted")
