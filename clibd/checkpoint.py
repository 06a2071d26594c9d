"""One-file checkpoints carrying weights, model config, tokenizers and preprocessing."""
from __future__ import annotations

import copy
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any, Optional

import torch

from clibd.config import ModelConfig
from clibd.model import CLIBD
from clibd.text_tokenizer import TextTokenizer

FORMAT = "clibd-checkpoint/1"


def _portable_config(config: ModelConfig) -> dict[str, Any]:
    """The config with local weight paths dropped: the checkpoint's own tensors replace them."""
    data = copy.deepcopy(config.to_dict())
    for tower in ("image", "dna", "text"):
        data[tower]["weights"] = None
    if data["text"]["tokenizer"] != "wordpiece":
        data["text"]["tokenizer"] = "stored"
    return data


def save_checkpoint(model: CLIBD, path: str | Path, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write a checkpoint atomically (a reader never sees a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": _portable_config(model.config),
        "text_tokenizer": model.text_tokenizer.to_json() if model.text_tokenizer is not None else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint payload (tensors on the CPU), validated."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path} is not a readable checkpoint ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    return payload


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> CLIBD:
    """Rebuild the exact model of a checkpoint, in eval mode, on `device`."""
    payload = read_checkpoint(path)
    config = ModelConfig.from_dict(payload["config"])
    stored = payload.get("text_tokenizer")
    tokenizer = TextTokenizer.from_json(stored, config.text.max_tokens) if stored else None
    model = CLIBD(config, tokenizer)
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def checkpoint_hash(path: str | Path) -> str:
    """SHA-256 of the checkpoint file, as recorded by index snapshots."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
