"""``amvlm project``: create, fill, inspect and export an annotation project from the command line.

    amvlm project create PROJECT [--name NAME]
    amvlm project add PROJECT INPUT [INPUT ...] [--recursive] [--rgb | --gray]
    amvlm project status PROJECT [--list] [--status {unlabeled,predicted,corrected}] [--json]
    amvlm project export PROJECT OUT_DIR [--kind human|prediction|pseudo_label] [--format png|tif]
                         [--prefix PREFIX] [--foreground VALUE] [--overwrite]
    amvlm project import-masks PROJECT MASK [MASK ...] --author NAME [--prefix PREFIX]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``project`` subcommand and its actions to the ``amvlm`` parser."""
    parser = subparsers.add_parser("project", help="annotation projects: create, add, status, export",
                                   description="Annotation projects (a folder the napari widget also opens): "
                                               "images, human labels, predictions, prompts and model versions.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_create(actions)
    _add_add(actions)
    _add_status(actions)
    _add_export(actions)
    _add_import(actions)


def _add_create(actions: Any) -> None:
    p = actions.add_parser("create", help="create an empty project folder (e.g. chest.amvlm)",
                           description="Create an empty project in a new (or empty) folder.")
    p.add_argument("project", help="folder to create (new or empty)")
    p.add_argument("--name", help="project name (default: the folder's name)")
    p.set_defaults(func=cmd_create)


def _add_add(actions: Any) -> None:
    p = actions.add_parser("add", help="add image files or folders of images",
                           description="Add images to a project (an image already in it is not added twice).")
    p.add_argument("project", help="the project folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (PNG, TIFF, ..., DICOM, NIfTI) or folders (a folder holding a DICOM series "
                        "is one image, a stack of its slices)")
    p.add_argument("--recursive", action="store_true", help="also look in sub-folders")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument("--rgb", dest="rgb", action="store_true", default=None, help="last axis is colour")
    colour.add_argument("--gray", dest="rgb", action="store_false", help="never treat an axis as colour")
    p.set_defaults(func=cmd_add)


def _add_status(actions: Any) -> None:
    p = actions.add_parser("status", help="count images by status; list them, models and rounds",
                           description="Count a project's images by status (unlabeled, predicted, corrected); "
                                       "optionally list them, its model versions and training rounds.")
    p.add_argument("project", help="the project folder")
    p.add_argument("--list", action="store_true", help="one line per image: id, status, source")
    p.add_argument("--status", choices=["unlabeled", "predicted", "corrected"], help="only list these")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_status)


def _add_export(actions: Any) -> None:
    p = actions.add_parser("export", help="write masks as PNG/TIFF files named after the source images",
                           description="Write one mask file per image that has a mask of the chosen kind, named "
                                       "after the image it belongs to.")
    p.add_argument("project", help="the project folder")
    p.add_argument("out_dir", help="folder to write the mask files into")
    p.add_argument("--kind", default="human", choices=["human", "prediction", "pseudo_label"],
                   help="human (default): the corrected labels; prediction: the latest model masks; "
                        "pseudo_label: the masks a training round made")
    p.add_argument("--format", default="png", choices=["png", "tif", "tiff", "nii.gz", "nii", "dcm"], dest="fmt",
                   help="file format (default %(default)s); nii.gz/nii (a NIfTI image's affine) and dcm (a DICOM-SEG "
                        "referencing its DICOM source) write one file per --source")
    p.add_argument("--source", action="append", default=[], metavar="PATH",
                   help="with --format nii.gz, nii or dcm: the NIfTI file, DICOM file or DICOM series folder the "
                        "images were added from (repeatable); its images are found by the file's sha256")
    p.add_argument("--prefix", default="", help='prepended to file names, e.g. "mask_"')
    p.add_argument("--foreground", type=int, help="value of binary masks' foreground (default: as imported, else 255)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_export)


def _add_import(actions: Any) -> None:
    p = actions.add_parser("import-masks", help="import mask files as human labels (matched by file name)",
                           description="Import mask files as the human labels of the project's images, matched by "
                                       "file name (mask_covid_1.png belongs to covid_1.png).")
    p.add_argument("project", help="the project folder")
    p.add_argument("masks", nargs="+", metavar="MASK", help="mask files or folders")
    p.add_argument("--author", required=True, help="the person who drew the masks")
    p.add_argument("--prefix", help='strip exactly this prefix from mask names (default: "mask_" etc.)')
    p.set_defaults(func=cmd_import_masks)


def cmd_create(args: argparse.Namespace) -> int:
    from ..project import Project

    project = Project.create(args.project, name=args.name)
    print(f"created project {project.name!r} in {project.root}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from ..project import Project

    project = Project.open(args.project)
    before = len(project)
    ids = project.add_images(args.inputs, recursive=args.recursive, rgb=args.rgb)
    print(f"added {len(project) - before} new images ({len(ids)} given) to {project.root}; {len(project)} in all")
    return 0


def summary(project: Any) -> dict[str, Any]:
    """A JSON-ready summary of a project: counts, models, rounds, and the annotation loop's figures per round."""
    from dataclasses import asdict

    from ..training.loop import corrected_since_last_round, loop_history

    n, changed = corrected_since_last_round(project)
    return {
        "project": str(project.root),
        "name": project.name,
        "images": len(project),
        "status": {s.value: n for s, n in project.counts().items()},
        "models": [{"sha256": m.sha256, "name": m.name} for m in project.models()],
        "rounds": [{"index": r.index, "model": r.model, "seed": r.seed, "metrics": r.metrics, "installed": r.installed}
                   for r in project.rounds()],
        "loop": [asdict(row) for row in loop_history(project)],
        "since_last_round": {"corrected": n, "changed_percent": changed},
    }


def cmd_status(args: argparse.Namespace) -> int:
    from ..project import Project
    from ..training.loop import history_table, loop_history

    project = Project.open(args.project, mode="r")
    info = summary(project)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        counts = ", ".join(f"{n} {s}" for s, n in info["status"].items())
        print(f"{info['name']}: {info['images']} images ({counts}); "
              f"{len(info['models'])} models, {len(info['rounds'])} rounds")  # fmt: skip
        if info["rounds"]:
            print(history_table(loop_history(project)))
        pending = info["since_last_round"]
        if info["rounds"] and pending["corrected"]:
            changed = pending["changed_percent"]
            print(f"since the last round: {pending['corrected']} corrected"
                  + (f", {changed:.1f} % of their masks changed" if changed is not None else ""))
    if args.list or args.status:
        for rec in project.images(args.status):
            print(f"{rec.id}\t{project.status(rec.id).value}\t{rec.source or '(array)'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..project import Project, clinical
    from ..project.records import MaskKind

    project = Project.open(args.project, mode="r")
    if args.fmt in clinical.FORMATS:
        if not args.source:
            raise ValueError(f"--format {args.fmt} writes masks beside their source: name it with --source PATH")
        paths = clinical.export_beside(project, Path(args.out_dir), [Path(s) for s in args.source],
                                       MaskKind(args.kind), args.fmt, args.prefix, args.overwrite)
        print(f"wrote {len(paths)} {args.kind} mask files to {args.out_dir}")
        return 0
    if args.source:
        raise ValueError("--source is for --format nii.gz, nii or dcm")
    paths = project.export_masks(
        args.out_dir, kind=args.kind, fmt=args.fmt, prefix=args.prefix, foreground=args.foreground,
        overwrite=args.overwrite,
    )  # fmt: skip
    print(f"wrote {len(paths)} {args.kind} masks to {args.out_dir}")
    return 0


def cmd_import_masks(args: argparse.Namespace) -> int:
    from ..project import Project

    project = Project.open(args.project)
    report = project.import_masks(args.masks, author=args.author, prefix=args.prefix)
    print(f"imported {len(report.imported)} masks as human labels; {len(report.unmatched)} matched no image")
    for path in report.unmatched[:10]:
        print(f"  unmatched: {path}")
    return 0
