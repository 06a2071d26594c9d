"""The three encoder towers: a timm image model and two transformers BERTs."""
from __future__ import annotations

import timm
import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM, BertModel

from clibd.config import DnaTowerConfig, ImageTowerConfig, TextTowerConfig
from clibd.dna_tokenizer import CLS_ID
from clibd.weights import load_into, read_state_dict


class ImageTower(nn.Module):
    """Any timm model by name, pooled features projected to the embedding size."""

    def __init__(self, config: ImageTowerConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        if config.projection == "head":
            self.trunk = timm.create_model(config.model_name, pretrained=False, num_classes=embed_dim,
                                           **config.model_kwargs)
            self.proj: nn.Module = nn.Identity()
        else:
            self.trunk = timm.create_model(config.model_name, pretrained=False, num_classes=0,
                                           **config.model_kwargs)
            self.proj = nn.Linear(self.trunk.num_features, embed_dim)
        if config.weights:
            load_into(self.trunk, read_state_dict(config.weights), f"image tower {config.model_name}")

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory in the trunk."""
        self.trunk.set_grad_checkpointing(enable)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unnormalised embedding of a batch of images."""
        return self.proj(self.trunk(pixels))


def _bert_config(hidden: int, layers: int, heads: int, intermediate: int, dropout: float,
                 vocab_size: int, positions: int, pad_id: int) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=intermediate,
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                      max_position_embeddings=positions, pad_token_id=pad_id)


def _hf_checkpointing(model: nn.Module, enable: bool) -> None:
    """Switch activation checkpointing on a transformers model (the method was renamed in v5)."""
    prefix = "activation" if hasattr(model, "activation_checkpointing_enable") else "gradient"
    getattr(model, f"{prefix}_checkpointing_{'enable' if enable else 'disable'}")()


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over positions where `mask` is 1 (all positions when no mask)."""
    if mask is None:
        return hidden.mean(dim=1)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class DnaTower(nn.Module):
    """BarcodeBERT: a BERT (with its MLM head, for pretraining) over DNA k-mers."""

    def __init__(self, config: DnaTowerConfig, embed_dim: int, vocab_size: int, num_tokens: int) -> None:
        super().__init__()
        self.config = config
        positions = config.max_positions or num_tokens + 1  # room for the optional prepended token
        if positions < num_tokens + 1:
            raise ValueError(f"max_positions {positions} is fewer than the {num_tokens + 1} DNA tokens")
        # The padding k-mer is <UNK>, a real token; <CLS> is never emitted, so it serves as padding_idx.
        bert_cfg = _bert_config(config.hidden_size, config.num_layers, config.num_heads,
                                config.intermediate_size, config.dropout, vocab_size, positions, CLS_ID)
        self.mlm = BertForMaskedLM(bert_cfg)
        if config.pooling == "official":
            # The official checkpoint replaces the MLM decoder by a square Linear and pools its softmax.
            self.mlm.cls.predictions.decoder = nn.Linear(config.hidden_size, config.hidden_size)
            self.proj: nn.Module = (nn.Identity() if embed_dim == config.hidden_size
                                    else nn.Linear(config.hidden_size, embed_dim))
        elif config.pooling == "mean":
            self.proj = nn.Linear(config.hidden_size, embed_dim)
        else:
            raise ValueError(f"unknown DNA pooling {config.pooling!r}")
        if config.weights:
            load_into(self.mlm, read_state_dict(config.weights), "DNA tower")

    @property
    def bert(self) -> BertModel:
        """The BERT trunk without the MLM head."""
        return self.mlm.bert

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory in the trunk."""
        _hf_checkpointing(self.mlm, enable)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised embedding of a batch of tokenised barcodes."""
        mask = attention_mask if self.config.use_attention_mask else None
        hidden = self.bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
        if self.config.pooling == "official":
            scores = self.mlm.cls(hidden).softmax(dim=-1)
            return self.proj(scores.mean(dim=1))
        return self.proj(masked_mean(hidden, mask))


class TextTower(nn.Module):
    """A BERT over the taxonomy string, pooled and projected to the embedding size."""

    def __init__(self, config: TextTowerConfig, embed_dim: int, vocab_size: int, pad_id: int) -> None:
        super().__init__()
        self.config = config
        bert_cfg = _bert_config(config.hidden_size, config.num_layers, config.num_heads,
                                config.intermediate_size, config.dropout, vocab_size, 512, pad_id)
        self.bert = BertModel(bert_cfg, add_pooling_layer=False)
        self.proj = nn.Linear(config.hidden_size, embed_dim)
        if config.weights:
            load_into(self.bert, read_state_dict(config.weights), "text tower")

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory in the trunk."""
        _hf_checkpointing(self.bert, enable)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised embedding of a batch of tokenised taxonomy strings."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.config.pooling == "mean_all":
            return self.proj(hidden.mean(dim=1))
        return self.proj(masked_mean(hidden, attention_mask))
