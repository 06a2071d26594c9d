"""The one `clibd` command; each package contributes its subcommands through an entry point."""
from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points
from typing import Optional, Sequence

from clibd.factory import list_models
from clibd.official.cli import register as register_import_official

ENTRY_POINT_GROUP = "clibd.commands"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every installed package's subcommands."""
    parser = argparse.ArgumentParser(
        prog="clibd",
        description="Species identification from insect images, DNA barcodes and taxonomy text (CLIBD).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    models = sub.add_parser("models", help="list the built-in model configs",
                            description="List the built-in model configs usable as --model.")
    models.set_defaults(func=lambda args: print("\n".join(list_models())) or 0)
    register_import_official(sub)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        ep.load()(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments and run the chosen subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    if not args.verbose:  # one line per HTTP request (`identify --server`) drowns the progress bar
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:  # bad input: a one-line message, not a traceback
        parser.exit(2, f"clibd {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
