"""`clibd pretrain-dna`: BarcodeBERT masked-language-model pretraining of the DNA tower."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from clibd.config import DnaTowerConfig
from clibd.dna_tokenizer import MASK_ID, UNK_ID, KmerTokenizer
from clibd.factory import get_model_config
from clibd.towers import DnaTower
from clibd.training.dataset import usable
from clibd.training.distributed import init_distributed
from clibd.training.partition import PRETRAIN, TRAIN
from clibd.readers import read_records

log = logging.getLogger(__name__)
WEIGHTS_FILE = "dna_tower.pt"
STATE_FILE = "pretrain_state.pt"


@dataclass
class PretrainConfig:
    """BarcodeBERT recipe: 50% of k-mers masked, AdamW lr 1e-4, wd 1e-5, linear warm-up."""

    records: str
    out_dir: str
    model: str = "clibd-tiny"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 100
    mask_ratio: float = 0.5
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"


class _Barcodes(Dataset):
    def __init__(self, sequences: list[str], tokenizer: KmerTokenizer) -> None:
        self.sequences, self.tokenizer = sequences, tokenizer

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        tok = self.tokenizer([self.sequences[i]])
        return {k: v[0] for k, v in tok.items()}


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, ratio: float,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace `ratio` of the real, known k-mers by <MASK>; labels are -100 elsewhere."""
    candidates = (attention_mask == 1) & (input_ids != UNK_ID)
    chosen = (torch.rand(input_ids.shape, generator=generator) < ratio) & candidates
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    masked = torch.where(chosen, torch.full_like(input_ids, MASK_ID), input_ids)
    return masked, labels


def pretrain_dna(cfg: PretrainConfig) -> Path:
    """Pretrain (or resume) and write `dna_tower.pt`, loadable with `clibd train --dna-weights`."""
    info = init_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = read_records(cfg.records)
    if any(r.split for r in records):  # never pretrain on held-out queries or keys
        records = [r for r in records if r.split in (TRAIN, PRETRAIN)]
    sequences = [r.dna for r in records if usable(r, ("dna",))]
    dna_cfg: DnaTowerConfig = get_model_config(cfg.model).dna
    tokenizer = KmerTokenizer(dna_cfg.tokenizer)
    tower = DnaTower(dna_cfg, embed_dim=dna_cfg.hidden_size, vocab_size=tokenizer.vocab_size,
                     num_tokens=tokenizer.num_tokens).to(info.device)
    loader = DataLoader(_Barcodes(sequences, tokenizer), batch_size=cfg.batch_size, shuffle=True,
                        drop_last=len(sequences) > cfg.batch_size)
    total = cfg.max_steps or cfg.epochs * len(loader)
    optimizer = torch.optim.AdamW(tower.mlm.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)))
    step, epoch = 0, 0
    if (out / STATE_FILE).exists():
        state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)
        tower.mlm.load_state_dict(state["mlm"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch = state["step"], state["epoch"]
        log.info("resuming DNA pretraining at epoch %d, step %d", epoch, step)
    gen = torch.Generator().manual_seed(cfg.seed + step)
    while step < total:
        tower.train()
        bar = tqdm(loader, desc=f"pretrain-dna epoch {epoch + 1}", leave=False)
        t0, n_seen, loss = time.perf_counter(), 0, torch.tensor(float("nan"))
        for batch in bar:
            if step >= total:
                break
            ids, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], cfg.mask_ratio, gen)
            out_mlm = tower.mlm(input_ids=ids.to(info.device), attention_mask=batch["attention_mask"].to(info.device),
                                labels=labels.to(info.device))
            loss = out_mlm.loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            n_seen += ids.shape[0]
            bar.set_postfix(loss=f"{loss.item():.3f}")
        epoch += 1
        row = {"epoch": epoch, "step": step, "mlm_loss": float(loss.item()),
               "samples_per_s": n_seen / max(time.perf_counter() - t0, 1e-9)}
        torch.save({"state_dict": tower.mlm.state_dict(), "dna_config": asdict(dna_cfg)}, out / (WEIGHTS_FILE + ".tmp"))
        (out / (WEIGHTS_FILE + ".tmp")).replace(out / WEIGHTS_FILE)
        torch.save({"mlm": tower.mlm.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch}, out / (STATE_FILE + ".tmp"))
        (out / (STATE_FILE + ".tmp")).replace(out / STATE_FILE)
        with open(out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        log.info("pretrain-dna epoch %d step %d/%d mlm loss %.4f", epoch, step, total, row["mlm_loss"])
    return out / WEIGHTS_FILE
