"""`clibd train`: contrastive alignment of any subset of the image, DNA and text towers."""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from clibd.checkpoint import save_checkpoint
from clibd.embedder import Embedder, autocast_for
from clibd.factory import create_model, get_model_config
from clibd.model import CLIBD
from clibd.taxonomy import taxonomy_text
from clibd.text_tokenizer import TextTokenizer
from clibd.training.dataset import ContrastiveDataset
from clibd.training.distributed import DistInfo, barrier, init_distributed
from clibd.training.evaluate import evaluate, mean_top1
from clibd.training.loss import ContrastiveLoss
from clibd.training.partition import PRETRAIN, TRAIN
from clibd.readers import read_records

log = logging.getLogger(__name__)
STATE_FILE = "train_state.pt"


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored with its checkpoints)."""

    records: str
    out_dir: str
    model: str = "clibd-tiny"
    modalities: tuple[str, ...] = ("image", "dna", "text")
    image_root: Optional[str] = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_pct: float = 0.3
    species_positives: bool = False
    grad_checkpointing: bool = False
    include_unlabelled: bool = True
    val_every: int = 1
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    max_steps: Optional[int] = None
    tower_weights: dict[str, Optional[str]] = field(default_factory=dict)
    # Barcodes paired with the training photos by species (for data with no photo+barcode specimen).
    pair_dna_records: Optional[str] = None


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build_model(cfg: TrainConfig, train_texts: list[str], tokenizer_json: Optional[str]) -> CLIBD:
    config = get_model_config(cfg.model)
    for tower, path in cfg.tower_weights.items():
        if path:
            getattr(config, tower).weights = path
    tokenizer = (TextTokenizer.from_json(tokenizer_json, config.text.max_tokens) if tokenizer_json else None)
    return create_model(config, text_corpus=train_texts, text_tokenizer=tokenizer)


def _freeze_unused(model: CLIBD, modalities: tuple[str, ...]) -> None:
    """Towers outside `modalities`, and the MLM head's own layers, get no gradient (DDP requires it)."""
    for name in ("image", "dna", "text"):
        if name not in modalities:
            getattr(model, name).requires_grad_(False)
    if model.config.dna.pooling != "official":
        trunk = {id(p) for p in model.dna.bert.parameters()}  # the decoder is tied to the word embeddings
        for p in model.dna.mlm.cls.parameters():
            if id(p) not in trunk:
                p.requires_grad_(False)


def _validate(model: CLIBD, records: list, info: DistInfo, modalities: tuple[str, ...]) -> Optional[dict]:
    if not any(r.split in ("val", "val_unseen") for r in records):
        return None
    combos = [(q, k) for q, k in (("dna", "dna"), ("image", "image"), ("image", "dna"), ("image", "text"),
                                  ("dna", "text")) if q in modalities and k in modalities]
    embedder = Embedder(model, device=info.device, batch_size=256)
    was_training = model.training
    results = evaluate(embedder, records, phase="val", combos=combos)
    model.train(was_training)
    return results


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) a run in `cfg.out_dir`; returns the path of the best checkpoint."""
    info = init_distributed(cfg.device)
    _seed_all(cfg.seed + info.rank)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = read_records(cfg.records, image_root=cfg.image_root)
    splits = {TRAIN, PRETRAIN} if cfg.include_unlabelled else {TRAIN}
    if not any(r.split for r in records):
        raise ValueError(f"{cfg.records} has no split column: run `clibd partition` first")
    train_records = [r for r in records if r.split in splits]
    state = torch.load(out / STATE_FILE, map_location="cpu", weights_only=False) if (out / STATE_FILE).exists() else None
    if state and state["config"]["model"] != cfg.model:
        raise ValueError(f"{out} holds a run of model {state['config']['model']}, not {cfg.model}")
    model = _build_model(cfg, [taxonomy_text(r.taxonomy()) for r in train_records],
                         state["text_tokenizer"] if state else None)
    _freeze_unused(model, cfg.modalities)
    if cfg.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(info.device)
    pool = None
    if cfg.pair_dna_records:
        train_species = {r.species for r in train_records if r.species}
        pool = [r for r in read_records(cfg.pair_dna_records) if r.species in train_species
                and r.split in (None, TRAIN, PRETRAIN)]
    dataset = ContrastiveDataset(train_records, model, cfg.modalities, augment=True, dna_pool=pool)
    if len(dataset) < 2:
        raise ValueError(f"only {len(dataset)} training records carry {'+'.join(cfg.modalities)}")
    sampler = DistributedSampler(dataset, info.world_size, info.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=True) if info.world_size > 1 else None
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=len(dataset) > cfg.batch_size, num_workers=cfg.num_workers,
                        pin_memory=info.device.type == "cuda", persistent_workers=cfg.num_workers > 0)
    steps_per_epoch = len(loader)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    step, epoch, best = 0, 0, -math.inf
    if state:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{out} holds a run that these settings cannot resume ({exc}); "
                             "use a new --out") from exc
        step, epoch, best = state["step"], state["epoch"], state["best"]
        log.info("resuming %s at epoch %d, step %d of %d", out, epoch, step, total_steps)
    # One extra step of room: the scheduler is stepped after every optimizer step, the last included.
    # On resume the schedule is recomputed for the (possibly longer) run and fast-forwarded to `step`.
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps + 1,
                                                    pct_start=cfg.warmup_pct, anneal_strategy="cos",
                                                    last_epoch=step - 1 if state else -1)
    ddp = DistributedDataParallel(model, device_ids=[info.device] if info.device.type == "cuda" else None) \
        if info.world_size > 1 else model
    loss_fn = ContrastiveLoss(cfg.species_positives, info.rank, info.world_size)
    meta = {"train_config": asdict(cfg), "train_records": len(dataset)}
    metrics_log = out / "metrics.jsonl"
    while step < total_steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not info.is_main, leave=False)
        t0, seen = time.perf_counter(), 0
        for batch in bar:
            if step >= total_steps:
                break
            batch = {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}
            with autocast_for(info.device):
                feats = ddp(batch)
                loss, terms = loss_fn({m: feats[m].float() for m in cfg.modalities}, feats["logit_scale"].float(),
                                      batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():  # as in CLIP: the temperature never exceeds 100
                model.logit_scale.clamp_(0, math.log(100))
            step += 1
            seen += batch["label"].shape[0] * info.world_size
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        epoch += 1
        row = {"epoch": epoch, "step": step, "loss": float(loss.item()), **terms,
               "samples_per_s": seen / max(time.perf_counter() - t0, 1e-9),
               "logit_scale": float(model.logit_scale.detach().exp())}
        if info.is_main:
            done = step >= total_steps
            if epoch % cfg.val_every == 0 or done:
                results = _validate(model, records, info, cfg.modalities)
                score = mean_top1(results) if results else -float(loss.item())
                row["val_mean_top1"] = score if results else None
                if score > best:
                    best = score
                    save_checkpoint(model, out / "best.pt", {**meta, "epoch": epoch, "step": step, "val": results})
            save_checkpoint(model, out / "last.pt", {**meta, "epoch": epoch, "step": step})
            torch.save({"config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": step, "epoch": epoch, "best": best,
                        "text_tokenizer": model.text_tokenizer.to_json()}, out / (STATE_FILE + ".tmp"))
            (out / (STATE_FILE + ".tmp")).replace(out / STATE_FILE)
            with open(metrics_log, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            log.info("epoch %d step %d/%d loss %.4f %.1f samples/s%s", epoch, step, total_steps, row["loss"],
                     row["samples_per_s"],
                     f" val mean top-1 {row['val_mean_top1']:.3f}" if row.get("val_mean_top1") is not None else "")
        barrier(info)
    return out / "best.pt"
