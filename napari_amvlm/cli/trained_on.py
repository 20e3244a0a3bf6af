"""``amvlm trained-on``: record in a model folder what it was trained on, so images unlike those are flagged."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trained-on", help="record what a model was trained on (for image-fit warnings)",
                       description="Write MODEL/trained_on.json: the dataset and modality, the number of "
                                   "channels of the training images as the model reads them (1 gray, 3 colour), "
                                   "and the range of their mean intensity, colour saturation and contrast. The "
                                   "plugin and `amvlm segment` warn when an image lies outside it (an H&E tile "
                                   "given to a chest X-ray model).",
                       epilog="example: amvlm trained-on --model models/amvlm-qata --dataset 'QaTa-COV19 "
                              "training split' --modality 'chest X-ray' --data ../shared/data/qata_cov19/train")
    p.add_argument("--model", required=True, metavar="DIR", help="the model folder to write trained_on.json into")
    p.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="the folders the model was trained on (image,mask,text CSV)")
    p.add_argument("--dataset", required=True, help="the training data's name, e.g. 'QaTa-COV19 training split'")
    p.add_argument("--modality", required=True, help="what the images are, e.g. 'chest X-ray', 'H&E histology'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.dataset import read_records
    from ..io import read_image
    from ..model.hub import read_config
    from ..model.trained_on import describe_images, write_trained_on

    read_config(args.model)  # a clear error for a folder that is not a model
    paths = [r.image for folder in args.data for r in read_records(folder)]
    described = describe_images((read_image(p) for p in paths), args.dataset, args.modality)
    path = write_trained_on(args.model, described)
    print(f"{path}: {described.images} training images of {described.describe()}, {described.channels} "
          f"channel{'s' if described.channels > 1 else ''}; mean intensity "
          f"{described.mean[0]:.2f}-{described.mean[1]:.2f}, saturation {described.saturation[0]:.2f}-"
          f"{described.saturation[1]:.2f}, contrast {described.contrast[0]:.2f}-{described.contrast[1]:.2f}")
    return 0
