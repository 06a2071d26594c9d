"""Symmetric contrastive loss over every pair of present modalities, with a cross-GPU gather."""
from __future__ import annotations

import itertools
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def gather_with_grad(x: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Concatenate `x` from every process; this process's slice keeps its gradient."""
    if world_size == 1:
        return x
    parts = [torch.zeros_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank] = x
    return torch.cat(parts, dim=0)


def soft_targets(labels: torch.Tensor) -> torch.Tensor:
    """Row-normalised target matrix where every same-label pair is a positive."""
    same = (labels[:, None] == labels[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


class ContrastiveLoss(nn.Module):
    """CLIP loss averaged over the modality pairs (I-D, I-T, D-T) present in a batch.

    With `species_positives`, all specimens of the same species in the batch are positives
    (unlabelled specimens, label -1 per sample made unique by the caller, stay specimen-only).
    """

    def __init__(self, species_positives: bool = False, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.species_positives = species_positives
        self.rank = rank
        self.world_size = world_size

    def forward(self, features: dict[str, torch.Tensor], logit_scale: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and each pair's term."""
        mods = [m for m in ("image", "dna", "text") if m in features]
        if len(mods) < 2:
            raise ValueError(f"contrastive loss needs two modalities, got {mods}")
        full = {m: gather_with_grad(features[m], self.rank, self.world_size) for m in mods}
        n = next(iter(full.values())).shape[0]
        if self.species_positives and labels is not None:
            all_labels = gather_with_grad(labels, self.rank, self.world_size)
            targets = soft_targets(all_labels)
        else:
            targets = torch.arange(n, device=logit_scale.device)
        terms: dict[str, torch.Tensor] = {}
        for a, b in itertools.combinations(mods, 2):
            logits = logit_scale * full[a] @ full[b].T
            tgt_t = targets.T if targets.dim() == 2 else targets
            terms[f"{a}-{b}"] = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, tgt_t)) / 2
        total = torch.stack(list(terms.values())).mean()
        return total, {k: float(v.detach()) for k, v in terms.items()}
