"""The frozen-embedding cache gives exactly what the frozen AMVLM gives, and encodes each image only once."""

from __future__ import annotations

import torch

from napari_amvlm.model.hub import load_model
from napari_amvlm.model.segmenter import TextGuidedSegmenter
from napari_amvlm.training.frozen_cache import FrozenEmbeddings


def test_cache_matches_the_model_and_encodes_once(tiny_amvlm_dir, tiny_seg_cfg):
    seg = TextGuidedSegmenter(load_model(tiny_amvlm_dir), tiny_seg_cfg)
    torch.manual_seed(0)
    images = torch.rand(3, 3, 32, 32)
    texts = ["lower left lung", "lower right lung", "lower left lung"]
    ref_tokens, ref_grid, ref_sentence = seg.frozen_embeddings(images, texts)
    calls = []
    encode = seg.amvlm.encode_image
    seg.amvlm.encode_image = lambda x, **kw: calls.append(x.shape[0]) or encode(x, **kw)
    cache = FrozenEmbeddings(seg)
    tokens, grid, sentence = cache(images, [(0, False), (1, False), (0, True)], texts)
    assert grid == ref_grid and torch.allclose(tokens, ref_tokens, atol=2e-3)  # float16 storage
    assert torch.allclose(sentence, ref_sentence, atol=1e-6)
    # the same keys again (any order): nothing is encoded, the same tensors come back
    again, _, _ = cache(images[[2, 0]], [(0, True), (0, False)], [texts[2], texts[0]])
    assert calls == [3] and torch.equal(again, tokens[[2, 0]])
