"""The CLIBD model: three towers into one L2-normalised space with a learned temperature."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clibd.config import ModelConfig
from clibd.dna_tokenizer import KmerTokenizer
from clibd.text_tokenizer import TextTokenizer
from clibd.towers import DnaTower, ImageTower, TextTower

MODALITIES: tuple[str, ...] = ("image", "dna", "text")


class CLIBD(nn.Module):
    """Image, DNA and taxonomy-text encoders sharing one embedding space."""

    def __init__(self, config: ModelConfig, text_tokenizer: TextTokenizer) -> None:
        super().__init__()
        self.config = config
        self.dna_tokenizer = KmerTokenizer(config.dna.tokenizer)
        self.text_tokenizer = text_tokenizer
        self.image = ImageTower(config.image, config.embed_dim)
        self.dna = DnaTower(config.dna, config.embed_dim, self.dna_tokenizer.vocab_size,
                            self.dna_tokenizer.num_tokens)
        self.text = TextTower(config.text, config.embed_dim, text_tokenizer.vocab_size, text_tokenizer.pad_id)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.init_logit_scale)))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Enable activation checkpointing in every tower."""
        for tower in (self.image, self.dna, self.text):
            tower.set_grad_checkpointing(enable)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings."""
        return F.normalize(self.image(pixels), dim=-1)

    def encode_dna(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised DNA embeddings."""
        return F.normalize(self.dna(input_ids, attention_mask), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised taxonomy-text embeddings."""
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
