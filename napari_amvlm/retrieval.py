"""Image -> sentence retrieval: how well the pre-trained model ties an image to its own description.

For each image of a folder, every candidate sentence is ranked by the cosine similarity of the global image
and sentence embeddings; top-k accuracy is the fraction of images whose own sentence is among the k best.
The candidates are the distinct sentences of a reference folder (e.g. the training split) plus any sentence of
the evaluated folder that the reference lacks, so every image's own sentence can be found.

Two rankings are reported. "cosine" ranks by similarity alone. A contrastive (InfoNCE) model learns
similarities that estimate log p(sentence | image) - log p(sentence) up to a constant, i.e. how much the image
raises a sentence's odds, not its probability; a sentence that is common anyway is under-ranked. "posterior"
ranks by sim / tau + log(1 + count in the reference folder), which turns the same similarities into
p(sentence | image) up to a constant, and is the figure to set against the frequency prior.

Side test: for each image whose sentence names one side only ("... lower left lung."), whether the image
embedding is closer to its own sentence than to the same sentence with left and right swapped. Guessing gives
50 %; a model that learned nothing about sides stays near it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from .data.dataset import ImageTextDataset, read_records
from .data.text import flip_text_horizontal, sides


@dataclass
class RetrievalResult:
    top1: float  # % of images whose own sentence ranks first
    top5: float  # % of images whose own sentence is in the 5 best
    n_images: int
    n_candidates: int
    prior_top1: float  # the same figures for ranking candidates by their frequency in the reference folder
    prior_top5: float
    side: float = float("nan")  # % of one-sided images closer to their own sentence than to the side-swapped one
    n_one_sided: int = 0
    posterior_top1: float = float("nan")  # ranking by sim / tau + log(1 + reference count) (see module doc)
    posterior_top5: float = float("nan")

    def line(self) -> str:
        return (f"top1={self.top1:.2f} top5={self.top5:.2f} n={self.n_images} candidates={self.n_candidates} "
                f"posterior: top1={self.posterior_top1:.2f} top5={self.posterior_top5:.2f} "
                f"(frequency prior: top1={self.prior_top1:.2f} top5={self.prior_top5:.2f}) "
                f"side={self.side:.2f} n_one_sided={self.n_one_sided} (guessing: 50)")


def candidate_sentences(reference: str | Path, evaluated: str | Path) -> tuple[list[str], Counter]:
    ref = Counter(r.text for r in read_records(reference))
    extra = [r.text for r in read_records(evaluated) if r.text not in ref]
    return list(ref) + sorted(set(extra)), ref


def _topk(scores: torch.Tensor, truth: torch.Tensor, k: int) -> float:
    best = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return 100.0 * float((best == truth[:, None]).any(1).float().mean())


@torch.inference_mode()
def retrieval_accuracy(model, data: str | Path, reference: str | Path, batch_size: int = 64,
                       device: str | torch.device = "cpu") -> RetrievalResult:
    model = model.to(device).eval()
    sentences, ref_counts = candidate_sentences(reference, data)
    index = {s: i for i, s in enumerate(sentences)}
    text_emb = torch.cat([model.encode_text(sentences[i : i + batch_size], with_dist=False)["global"]
                          for i in range(0, len(sentences), batch_size)])
    ds = ImageTextDataset(data, size=model.cfg.vision.image_size)
    scores, truth = [], []
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        images = torch.stack([it["image"] for it in items]).to(device)
        img = model.encode_image(images, with_dist=False)["global"]
        scores.append((img @ text_emb.t()).cpu())
        truth += [index[it["text"]] for it in items]
    s, t = torch.cat(scores), torch.tensor(truth)
    prior = torch.tensor([float(ref_counts.get(x, 0)) for x in sentences]).expand_as(s)
    side, n_side = _side_preference(model, ds, batch_size, device)
    tau = model.cfg.loss.temperature if hasattr(model.cfg, "loss") else 0.07
    posterior = s / tau + torch.log1p(prior)
    return RetrievalResult(top1=_topk(s, t, 1), top5=_topk(s, t, 5), n_images=len(t), n_candidates=len(sentences),
                           prior_top1=_topk(prior, t, 1), prior_top5=_topk(prior, t, 5), side=side,
                           n_one_sided=n_side, posterior_top1=_topk(posterior, t, 1),
                           posterior_top5=_topk(posterior, t, 5))


def _side_preference(model, ds: ImageTextDataset, batch_size: int, device) -> tuple[float, int]:
    """(% of one-sided images whose embedding prefers the own sentence over the side-swapped one, their number)."""
    one = [i for i, text in enumerate(ds.texts) if sides(text) in ({"left"}, {"right"})]
    wins = []
    for start in range(0, len(one), batch_size):
        items = [ds[i] for i in one[start : start + batch_size]]
        img = model.encode_image(torch.stack([it["image"] for it in items]).to(device), with_dist=False)["global"]
        own = model.encode_text([it["text"] for it in items], with_dist=False)["global"]
        swapped = model.encode_text([flip_text_horizontal(it["text"]) for it in items], with_dist=False)["global"]
        wins += ((img * own).sum(1) > (img * swapped).sum(1)).tolist()
    return (100.0 * sum(wins) / len(wins) if wins else float("nan")), len(wins)
