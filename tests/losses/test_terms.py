"""The loss modules on a tiny real model: soft matching against a loop, and gradients reaching the encoders."""

import pytest
import torch

from napari_amvlm.losses.css import soft_match_similarity
from napari_amvlm.losses.total import amvlm_loss
from napari_amvlm.model.amvlm import AMVLM

TEXTS = [
    "unilateral pulmonary infection, one infected area, lower left lung.",
    "unilateral pulmonary infection, one infected area, lower right lung.",
    "bilateral pulmonary infection, two infected areas, lower left lung and lower right lung.",
    "unilateral pulmonary infection, one infected area, lower left lung.",
]


@pytest.fixture
def model_and_batch(tiny_cfg):
    torch.manual_seed(0)
    model = AMVLM(tiny_cfg).train()
    images = torch.rand(4, 3, 32, 32)
    return model, images


def test_soft_match_similarity_matches_loop(model_and_batch):
    model, images = model_and_batch
    emb = model(images, TEXTS)
    sim, t_own, v_own = soft_match_similarity(emb, model.patch_to_words, model.word_to_patches)
    p2w, w2p = model.patch_to_words, model.word_to_patches
    for i in range(4):
        for j in range(4):
            words = emb.text_tokens[j][emb.word_mask[j]]  # (W, E)
            patches = emb.image_tokens[i]  # (P, E)
            a = torch.softmax(p2w.q(patches) @ p2w.k(words).t() * p2w.scale, dim=-1)
            t_att = torch.nn.functional.normalize(a @ p2w.v(words), dim=-1)
            s_img = (patches * t_att).sum(-1).mean()
            b = torch.softmax(w2p.q(words) @ w2p.k(patches).t() * w2p.scale, dim=-1)
            v_att = torch.nn.functional.normalize(b @ w2p.v(patches), dim=-1)
            s_txt = (words * v_att).sum(-1).mean()
            assert sim[i, j].item() == pytest.approx(0.5 * (s_img + s_txt).item(), abs=1e-5)
            if i == j:
                assert torch.allclose(t_own[i], t_att, atol=1e-5)


def _grad_norm(params):
    return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)


# Cross-modal terms must train both encoders; intra-modal (ICL) terms train the encoder of their own modality.
TERMS = {"global": "vt", "css/v2t": "vt", "css/t2v": "vt", "css/pdt": "vt", "icl/img_coarse": "v",
         "icl/img_fine": "v", "icl/txt_coarse": "t", "icl/txt_fine": "t"}


@pytest.mark.parametrize("term", sorted(TERMS))
def test_every_term_reaches_the_encoders(model_and_batch, term):
    model, images = model_and_batch
    emb = model(images, TEXTS)
    aug = model(images.flip(-2) * 0.8 + 0.1, TEXTS, with_dist=False)
    losses = amvlm_loss(model, model.cfg.loss, emb, TEXTS, aug)
    assert {"global", "css", "icl", "loss"} <= set(losses)
    model.zero_grad(set_to_none=True)
    losses[term].backward()
    vision = list(model.vision.parameters())
    text_trainable, _ = model.trainable_parameters()
    assert (_grad_norm(vision) > 0) == ("v" in TERMS[term]), f"{term}: wrong gradient in the vision encoder"
    assert (_grad_norm(text_trainable) > 0) == ("t" in TERMS[term]), f"{term}: wrong gradient in the text layers"
    frozen = [p for p in model.text.parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in frozen)


def test_pdt_term_trains_the_pdt_heads(model_and_batch):
    model, images = model_and_batch
    emb = model(images, TEXTS)
    aug = model(images, TEXTS, with_dist=False)
    amvlm_loss(model, model.cfg.loss, emb, TEXTS, aug)["css/pdt"].backward()
    assert _grad_norm(model.image_pdt.parameters()) > 0 and _grad_norm(model.text_pdt.parameters()) > 0


def test_total_is_weighted_sum(model_and_batch):
    model, images = model_and_batch
    emb = model(images, TEXTS)
    aug = model(images, TEXTS, with_dist=False)
    d = amvlm_loss(model, model.cfg.loss, emb, TEXTS, aug)
    c = model.cfg.loss
    expected = c.w_global * d["global"] + c.w_css * d["css"] + c.w_icl * d["icl"]
    assert d["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    g = amvlm_loss(model, c, emb, TEXTS, None, global_only=True)
    assert set(g) == {"global", "loss"}
