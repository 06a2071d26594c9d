"""Torch datasets over records: contrastive pairs and masked-LM barcodes."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch.utils.data import Dataset

from clibd.model import CLIBD
from clibd.preprocess import load_image, train_transform, eval_transform
from clibd.taxonomy import taxonomy_text
from clibd.records import Record


def usable(rec: Record, modalities: Sequence[str]) -> bool:
    """Whether a record carries every modality asked for (a valid barcode for "dna")."""
    return all(rec.has(m) for m in modalities if m in ("image", "dna"))


class ContrastiveDataset(Dataset):
    """Specimens as tensors for the modalities asked for, plus an integer species label.

    With `dna_pool`, pairing is by species: each item's barcode is drawn at random from the pool's
    barcodes of the same species (a photo and a barcode of two specimens of one species), for data
    where no specimen has both.
    """

    def __init__(self, records: Sequence[Record], model: CLIBD, modalities: Sequence[str],
                 augment: bool = True, species_index: Optional[dict[str, int]] = None,
                 dna_pool: Optional[Sequence[Record]] = None) -> None:
        self.pool: Optional[dict[str, list[str]]] = None
        if dna_pool is not None and "dna" in modalities:
            self.pool = {}
            for rec in dna_pool:
                if rec.species and usable(rec, ("dna",)):
                    self.pool.setdefault(rec.species, []).append(rec.dna)
            records = [r for r in records if r.species in self.pool]
            modalities_own = tuple(m for m in modalities if m != "dna")
        else:
            modalities_own = tuple(modalities)
        self.records = [r for r in records if usable(r, modalities_own)]
        self.modalities = tuple(modalities)
        self.dna_tokenizer = model.dna_tokenizer
        self.text_tokenizer = model.text_tokenizer
        self.prepend = model.config.dna.prepend_mask_token
        cfg = model.config.preprocess
        self.transform = train_transform(cfg) if augment else eval_transform(cfg)
        names = sorted({r.species for r in self.records if r.species})
        self.species_index = species_index or {s: i for i, s in enumerate(names)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.records[i]
        item: dict[str, torch.Tensor] = {}
        if "image" in self.modalities:
            item["image"] = self.transform(load_image(rec.image))
        if "dna" in self.modalities:
            if self.pool is not None:
                options = self.pool[rec.species]
                dna = options[int(torch.randint(len(options), (1,)))]
            else:
                dna = rec.dna
            tok = self.dna_tokenizer([dna], prepend_mask_token=self.prepend)
            item["dna_input_ids"], item["dna_attention_mask"] = tok["input_ids"][0], tok["attention_mask"][0]
        if "text" in self.modalities:
            tok = self.text_tokenizer([taxonomy_text(rec.taxonomy())])
            item["text_input_ids"], item["text_attention_mask"] = tok["input_ids"][0], tok["attention_mask"][0]
        # Unlabelled specimens get a label of their own (-1 - index), so they are never positives of others.
        label = self.species_index.get(rec.species, -1 - i) if rec.species else -1 - i
        item["label"] = torch.tensor(label, dtype=torch.long)
        return item
