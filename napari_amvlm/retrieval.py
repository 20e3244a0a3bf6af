"""Image -> sentence retrieval: how well the pre-trained model ties an image to its own description.

For each image of a folder, every candidate sentence is ranked by the cosine similarity of the global image
and sentence embeddings; top-k accuracy is the fraction of images whose own sentence is among the k best.
The candidates are the distinct sentences of a reference folder (e.g. the training split) plus any sentence of
the evaluated folder that the reference lacks, so every image's own sentence can be found.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from .data.dataset import ImageTextDataset, read_records


@dataclass
class RetrievalResult:
    top1: float  # % of images whose own sentence ranks first
    top5: float  # % of images whose own sentence is in the 5 best
    n_images: int
    n_candidates: int
    prior_top1: float  # the same figures for ranking candidates by their frequency in the reference folder
    prior_top5: float

    def line(self) -> str:
        return (f"top1={self.top1:.2f} top5={self.top5:.2f} n={self.n_images} candidates={self.n_candidates} "
                f"(frequency prior: top1={self.prior_top1:.2f} top5={self.prior_top5:.2f})")


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
    return RetrievalResult(top1=_topk(s, t, 1), top5=_topk(s, t, 5), n_images=len(t), n_candidates=len(sentences),
                           prior_top1=_topk(prior, t, 1), prior_top5=_topk(prior, t, 5))
