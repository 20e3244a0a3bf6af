"""The ``amvlm`` command's entry point. Each command group lives in its own module of this package and
registers its subcommands here."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..training import child

# Each module exposes ``register(subparsers)`` which adds its subcommand and sets ``func``.
# Modules are imported lazily (inside build_parser) so that ``amvlm --help`` stays fast.
SUBCOMMAND_MODULES: list[str] = ["pretrain", "retrieval", "segmentation", "vocabulary", "trained_on", "project"]


EXAMPLE = """example (segment the bundled chest X-ray; `amvlm COMMAND --help` describes each command):
  amvlm segment --model models/amvlm-qata --image sample_data/qata/images/covid_2804.png \\
      --text "unilateral pulmonary infection, one infected area, lower left lung." --out mask.png"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amvlm", description="Text-guided semi-supervised medical image segmentation (AMVLM).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"amvlm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    child.apply_from_env()  # only set when the plugin started this process
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as err:  # user errors: one clear line, no traceback
        print(f"amvlm {args.command}: error: {err}", file=sys.stderr)
        return 1

