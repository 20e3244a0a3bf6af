"""``amvlm vocabulary``: record a model folder's training vocabulary (the words its training sentences use)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vocabulary", help="record the words a model was trained on (for prompt warnings)",
                       description="Write MODEL/vocabulary.txt: the words of the sentences in the given training "
                                   "folders, added to the words already listed there. Prompt words outside it are "
                                   "ignored with a warning naming them; `amvlm train` writes it itself.")
    p.add_argument("--model", required=True, metavar="DIR", help="the model folder to write vocabulary.txt into")
    p.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="the folders the model was trained on (image,mask,text CSV)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.prompts import folder_sentences, read_vocabulary, write_vocabulary
    from ..model.hub import read_config

    read_config(args.model)  # a clear error for a folder that is not a model
    sentences = [t for folder in args.data for t in folder_sentences(folder)]
    if not sentences:
        raise ValueError(f"no sentences (a CSV with a text column) in {', '.join(args.data)}")
    path = write_vocabulary(args.model, sentences, read_vocabulary(args.model) or ())
    print(f"{path}: {len(read_vocabulary(args.model) or ())} words")
    return 0
