"""`clibd import-official`: the command-line face of the importer."""
from __future__ import annotations

import argparse

from clibd.official.importer import DEFAULT_MODEL, import_official


def _run(args: argparse.Namespace) -> int:
    modalities = ["image"] if args.image_only else args.modalities
    report = import_official(args.source, args.out, config_path=args.config, text_tokenizer=args.text_tokenizer,
                             modalities=modalities, model_config=args.model_config)
    print(report.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `import-official` to the `clibd` command."""
    p = sub.add_parser(
        "import-official", help="turn a published CLIBD best.pth into a project checkpoint",
        description="Read a published CLIBD state dict (current or pre-April-2025 key prefixes; image+DNA+text, "
                    "image+DNA or image+text; LoRA-path DNA/text layers too), merge its adapters into the "
                    "weights, check every key and shape against the model config, and write a one-file "
                    "project checkpoint that reproduces the published forward (pixels in [0,1], <MASK> "
                    "prepended to barcodes without attention mask, softmax-mean DNA pooling, text mean over "
                    "all 20 positions). Any missing, unexpected or mis-shaped key is an error naming it.")
    p.add_argument("source", metavar="BEST_PTH", help="the published state dict (best.pth)")
    p.add_argument("--out", required=True, metavar="MODEL_PT", help="the project checkpoint to write")
    p.add_argument("--config", metavar="CONFIG_YAML",
                   help="the Hydra config.yaml published beside best.pth; its towers must match the file's, "
                        "and model kinds without a project tower (OpenCLIP, precomputed features) are refused")
    p.add_argument("--text-tokenizer", metavar="DIR",
                   help="folder with the text tower's tokenizer (bert-base-uncased vocab.txt or tokenizer.json); "
                        "required when the text tower is imported")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--image-only", action="store_true", help="import the image tower alone")
    which.add_argument("--modalities", nargs="+", choices=("image", "dna", "text"), metavar="MODALITY",
                       help="import only these towers (image, dna, text); default: every tower in the file")
    p.add_argument("--model-config", default=DEFAULT_MODEL, metavar="NAME_OR_JSON",
                   help=f"the project architecture the weights map onto (default {DEFAULT_MODEL}, the published "
                        "model's; a JSON file for other depths or widths)")
    p.set_defaults(func=_run)
