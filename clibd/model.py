"""The CLIBD model: three towers into one L2-normalised space with a learned temperature."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from clibd.config import ALL_MODALITIES, ModelConfig
from clibd.dna_tokenizer import KmerTokenizer
from clibd.text_tokenizer import TextTokenizer
from clibd.towers import DnaTower, ImageTower, TextTower

MODALITIES: tuple[str, ...] = ALL_MODALITIES
_NAMES = {"image": "image", "dna": "DNA", "text": "taxonomy-text"}


class MissingModalityError(ValueError):
    """The model has no tower for this modality (it was imported or built without it)."""


class CLIBD(nn.Module):
    """Image, DNA and taxonomy-text encoders sharing one embedding space (`config.modalities` of them)."""

    def __init__(self, config: ModelConfig, text_tokenizer: Optional[TextTokenizer]) -> None:
        super().__init__()
        self.config = config
        self.dna_tokenizer = KmerTokenizer(config.dna.tokenizer)
        self.text_tokenizer = text_tokenizer
        has = set(config.modalities)
        self.image = ImageTower(config.image, config.embed_dim) if "image" in has else None
        self.dna = (DnaTower(config.dna, config.embed_dim, self.dna_tokenizer.vocab_size,
                             self.dna_tokenizer.num_tokens) if "dna" in has else None)
        if "text" in has and text_tokenizer is None:
            raise ValueError("a model with a text tower needs a text tokenizer")
        self.text = (TextTower(config.text, config.embed_dim, text_tokenizer.vocab_size, text_tokenizer.pad_id)
                     if "text" in has else None)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.init_logit_scale)))

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this model can embed."""
        return self.config.modalities

    def require(self, modality: str) -> None:
        """Raise `MissingModalityError` unless the model has a tower for `modality`."""
        if modality not in self.config.modalities:
            raise MissingModalityError(
                f"this model has no {_NAMES[modality]} encoder (it embeds {', '.join(self.config.modalities)})")

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Enable activation checkpointing in every tower."""
        for tower in (self.image, self.dna, self.text):
            if tower is not None:
                tower.set_grad_checkpointing(enable)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings."""
        self.require("image")
        return F.normalize(self.image(pixels), dim=-1)

    def encode_dna(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised DNA embeddings."""
        self.require("dna")
        return F.normalize(self.dna(input_ids, attention_mask), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised taxonomy-text embeddings."""
        self.require("text")
        return F.normalize(self.text(input_ids, attention_mask), dim=-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Embeddings of every modality present in `batch`, plus the temperature."""
        out: dict[str, torch.Tensor] = {}
        if "image" in batch:
            out["image"] = self.encode_image(batch["image"])
        if "dna_input_ids" in batch:
            out["dna"] = self.encode_dna(batch["dna_input_ids"], batch["dna_attention_mask"])
        if "text_input_ids" in batch:
            out["text"] = self.encode_text(batch["text_input_ids"], batch["text_attention_mask"])
        out["logit_scale"] = self.logit_scale.exp()
        return out
