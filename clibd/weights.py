"""Reading tower weights from local files or directories (never from a hub)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from clibd.packaged_weights import PREFIX, read_packaged

log = logging.getLogger(__name__)

_DIR_CANDIDATES = ("model.safetensors", "pytorch_model.bin", "model.pt", "weights.pt")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors/.pt/.pth/.bin file, a directory holding one, or `package:NAME`."""
    if str(path).startswith(PREFIX):
        return read_packaged(str(path))
    path = Path(path)
    if path.is_dir():
        for name in _DIR_CANDIDATES:
            if (path / name).exists():
                return read_state_dict(path / name)
        raise FileNotFoundError(f"no weights file ({', '.join(_DIR_CANDIDATES)}) in {path}")
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    data = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and key in data and isinstance(data[key], dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return data


def load_into(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load matching tensors into `module`, failing loudly if almost nothing matched."""
    own = module.state_dict()
    state = _align_prefix(state, set(own))
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped_shape = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if len(usable) < max(1, len(own) // 2):
        raise ValueError(
            f"{what}: only {len(usable)} of {len(own)} tensors match the weights given "
            f"(e.g. unmatched {sorted(set(state) - set(own))[:5]})"
        )
    missing = sorted(set(own) - set(usable))
    module.load_state_dict(usable, strict=False)
    log.info("%s: loaded %d tensors, %d left at init %s, %d shape mismatches %s",
             what, len(usable), len(missing), missing[:5], len(skipped_shape), skipped_shape[:5])


def _align_prefix(state: dict[str, torch.Tensor], own: set[str]) -> dict[str, torch.Tensor]:
    """Strip or add the wrapper prefix ("module.", "bert.", ...) that makes most keys match."""
    best, best_hits = state, sum(k in own for k in state)
    for prefix in ("module.", "bert.", "model.", "encoder."):
        stripped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        added = {prefix + k: v for k, v in state.items()}
        for candidate in (stripped, added):
            hits = sum(k in own for k in candidate)
            if hits > best_hits:
                best, best_hits = candidate, hits
    return best
