"""Position-word hard negatives: the rewrites, the formula against a loop, and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from napari_amvlm.losses.position_negatives import position_negative_loss, position_rewrites


def test_rewrites_swap_sides_and_zones_and_skip_what_does_not_change():
    texts = ["unilateral pulmonary infection, one infected area, lower left lung.",
             "bilateral pulmonary infection, six infected areas, upper middle lower left lung and upper middle "
             "lower right lung.",
             "The nuclei are evenly distributed."]
    rewrites, owner = position_rewrites(texts)
    assert rewrites == ["unilateral pulmonary infection, one infected area, lower right lung.",
                        "unilateral pulmonary infection, one infected area, upper left lung."]
    assert owner == [0, 0]  # the symmetric sentence and the one without position words give none


def test_loss_matches_a_loop_and_prefers_the_own_sentence():
    g = torch.Generator().manual_seed(0)
    image, own = (F.normalize(torch.randn(3, 8, generator=g), dim=-1) for _ in range(2))
    negatives = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    owner = torch.tensor([0, 0, 2, 1])
    tau = 0.07
    ref = sum(math.log1p(math.exp((float(image[i] @ negatives[k]) - float(image[i] @ own[i])) / tau))
              for k, i in enumerate(owner.tolist())) / 4
    assert float(position_negative_loss(image, own, negatives, owner, tau)["loss"]) == pytest.approx(ref, rel=1e-5)
    # an image that already prefers its own sentence by a wide margin costs almost nothing
    low = position_negative_loss(own, own, -own[owner], owner, tau)["loss"]
    assert float(low) < 1e-6


def test_gradients_and_empty_and_shape_errors():
    image = F.normalize(torch.randn(2, 4), dim=-1).requires_grad_(True)
    own = F.normalize(torch.randn(2, 4), dim=-1)
    neg = F.normalize(torch.randn(1, 4), dim=-1)
    position_negative_loss(image, own, neg, torch.tensor([1]), 0.07)["loss"].backward()
    assert image.grad[1].abs().sum() > 0 and image.grad[0].abs().sum() == 0
    empty = position_negative_loss(image, own, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 0.07)
    assert float(empty["loss"]) == 0.0 and empty["loss"].requires_grad
    with pytest.raises(ValueError, match="negatives"):
        position_negative_loss(image, own, torch.zeros(1, 3), torch.tensor([0]), 0.07)


def test_pretraining_step_with_position_negatives_reaches_both_encoders(tiny_cfg):
    from napari_amvlm.losses.total import amvlm_loss
    from napari_amvlm.model.amvlm import AMVLM
    from napari_amvlm.training.pretrain import embed_with_negatives

    tiny_cfg.loss.w_pos = 0.5
    torch.manual_seed(0)
    model = AMVLM(tiny_cfg).train()
    texts = ["unilateral pulmonary infection, one infected area, lower left lung.",
             "unilateral pulmonary infection, one infected area, upper right lung.",
             "The nuclei are evenly distributed."]
    emb, negatives = embed_with_negatives(model, torch.rand(3, 3, 32, 32), texts, False, True)
    assert negatives[0].shape == (4, 16) and negatives[1].tolist() == [0, 0, 1, 1]
    out = amvlm_loss(model, tiny_cfg.loss, emb, texts, global_only=True, negatives=negatives)
    assert float(out["pos_neg"]) > 0
    out["loss"].backward()
    assert model.vision.pos_embed.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="w_pos"):
        amvlm_loss(model, tiny_cfg.loss, emb, texts, global_only=True)


def test_negatives_share_the_batchnorm_statistics_of_the_sentences(tiny_cfg):
    """In training mode the projection's BatchNorm normalises with its batch's statistics. A rewrite encoded in a
    pass of its own would differ from its sentence by those statistics alone, which the loss can learn to read
    instead of the words: a negative identical to a sentence of the batch must get the same embedding."""
    from napari_amvlm.model.amvlm import AMVLM

    torch.manual_seed(0)
    model = AMVLM(tiny_cfg).train()
    model.text.model.eval()  # no dropout: the projections' BatchNorm is what is tested
    texts = ["unilateral pulmonary infection, one infected area, lower left lung.",
             "bilateral pulmonary infection, two infected areas, lower left lung and lower right lung.",
             "The nuclei are evenly distributed."]
    with torch.no_grad():
        out = model.encode_text(texts, with_dist=False, extra=[texts[0], texts[2]])
        alone = model.encode_text([texts[0], texts[2]], with_dist=False)["global"]
    assert out["global"].shape == (3, 16) and out["extra_global"].shape == (2, 16)
    assert torch.allclose(out["extra_global"], out["global"][[0, 2]], atol=1e-6)
    assert not torch.allclose(alone, out["global"][[0, 2]], atol=1e-3)  # what a pass of their own gives
    assert out["tokens"].shape[0] == 3 and out["word_mask"].shape[0] == 3  # the extras' tokens are not returned
    with pytest.raises(ValueError, match="strings"):
        model.encode_text(model.text.tokenize(texts), extra=texts)
    # the pre-training step: the side swap of sentence 0 is sentence 1, and gets sentence 1's embedding
    from napari_amvlm.training.pretrain import embed_with_negatives

    pair = ["unilateral pulmonary infection, one infected area, lower left lung.",
            "unilateral pulmonary infection, one infected area, lower right lung.", texts[2]]
    with torch.no_grad():
        emb, (neg, owner) = embed_with_negatives(model, torch.rand(3, 3, 32, 32), pair, False, True)
    first = owner.tolist().index(0)
    assert torch.allclose(neg[first], emb.text_global[1], atol=1e-6)
