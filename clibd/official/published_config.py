"""The Hydra `config.yaml` published beside a CLIBD `best.pth`: which towers it trained, and refusals."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml


@dataclass(frozen=True)
class PublishedConfig:
    """What the run's config says about its model."""

    modalities: tuple[str, ...]
    output_dim: Optional[int]
    full_fine_tune: bool


def _model_section(data: dict[str, Any]) -> dict[str, Any]:
    section = data.get("model_config", data)
    if not isinstance(section, dict) or not ({"image", "dna", "language"} & set(section)):
        raise ValueError("the config has no model_config with image / dna / language entries: "
                         "pass the config.yaml written beside best.pth")
    return section


def read_published_config(path: str | Path) -> PublishedConfig:
    """Read a published run's config, refusing model kinds the project has no tower for."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    model = _model_section(data)
    image = model.get("image") or {}
    if image.get("model") in {"lora_clip_image"}:
        raise ValueError(f"{path}: an OpenCLIP image/text model ({image.get('model')}); "
                         "only the ViT + BarcodeBERT + BERT-small model can be imported")
    if image and image.get("input_type", "image") != "image":
        raise ValueError(f"{path}: the image tower reads precomputed features ({image.get('input_type')!r}), "
                         "not photos; only the ViT image tower can be imported")
    dna = model.get("dna")
    if isinstance(dna, dict) and dna.get("freeze"):
        raise ValueError(f"{path}: the DNA input is a frozen precomputed feature, not a BarcodeBERT tower")
    if isinstance(dna, dict) and dna.get("input_type", "sequence") != "sequence":
        raise ValueError(f"{path}: the DNA tower reads {dna.get('input_type')!r}, not sequences")
    modalities = tuple(m for m, key in (("image", "image"), ("dna", "dna"), ("text", "language")) if model.get(key))
    output_dim = model.get("output_dim")
    return PublishedConfig(modalities=modalities, output_dim=int(output_dim) if output_dim else None,
                           full_fine_tune=bool(model.get("disable_lora", False)))
