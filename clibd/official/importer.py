"""`import_official`: a published CLIBD `best.pth` becomes a one-file project checkpoint."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from clibd.checkpoint import save_checkpoint
from clibd.config import ModelConfig
from clibd.factory import get_model_config
from clibd.model import CLIBD
from clibd.official.keys import PublishedKeyError, Variant, check_fit, split_towers, to_project_keys
from clibd.official.published_config import read_published_config
from clibd.text_tokenizer import TextTokenizer

log = logging.getLogger(__name__)
DEFAULT_MODEL = "clibd-official"


@dataclass
class ImportReport:
    """What was imported and where it went."""

    out: Path
    modalities: tuple[str, ...]
    variant: Variant
    parameters: int
    source_sha256: str

    def summary(self) -> str:
        """A few lines for the terminal."""
        v = self.variant
        lines = [f"wrote {self.out} ({self.parameters / 1e6:.1f}M parameters; towers: {', '.join(self.modalities)})",
                 f"prefixes: {'old (before April 2025)' if v.old_prefixes else 'current'}; "
                 f"ViT q/v adapters merged in {v.vit_adapters_merged} blocks"]
        for tower, n in sorted(v.bert_lora_merged.items()):
            lines.append(f"{tower} tower: LoRA-path query/value merged in {n} layers")
        if v.unused:
            lines.append(f"left out (never read by the forward): {len(v.unused)} tensors, e.g. {v.unused[0]}")
        if not v.logit_scale:
            lines.append("no logit_scale in the file: the temperature keeps its initial value "
                         "(it does not change embeddings)")
        return "\n".join(lines)


def read_published(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a published `best.pth` (a plain state dict; a `state_dict` or `module.` wrapper is undone)."""
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path} is not a readable PyTorch file ({exc.__class__.__name__}: {exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path} does not hold a state dict")
    bad = [k for k, v in data.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: entries that are not tensors: {', '.join(map(str, bad[:5]))}")
    if all(k.startswith("module.") for k in data):
        data = {k[len("module."):]: v for k, v in data.items()}
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _chosen_modalities(found: tuple[str, ...], wanted: Optional[Sequence[str]],
                       config_path: Optional[str | Path]) -> tuple[str, ...]:
    if config_path is not None:
        declared = read_published_config(config_path).modalities
        if set(declared) != set(found):
            raise PublishedKeyError(f"{Path(config_path).name} declares towers {', '.join(declared)} but the file "
                                    f"holds {', '.join(found)}: is it the config of this run?")
    if not wanted:
        return found
    unknown = [m for m in wanted if m not in ("image", "dna", "text")]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; choose among image, dna, text")
    return tuple(m for m in ("image", "dna", "text") if m in wanted)


def _text_tokenizer(modalities: tuple[str, ...], directory: Optional[str | Path], config: ModelConfig,
                    rows: Optional[int]) -> Optional[TextTokenizer]:
    if "text" not in modalities:
        return None
    if directory is None:
        raise ValueError("the text tower needs its tokenizer: pass --text-tokenizer DIR (a folder with the "
                         "bert-base-uncased vocab.txt), or leave the text tower out with --modalities image dna")
    tokenizer = TextTokenizer.from_dir(directory, config.text.max_tokens)
    if rows is not None and tokenizer.vocab_size != rows:
        raise ValueError(f"the tokenizer in {directory} has {tokenizer.vocab_size} tokens but the file's text "
                         f"tower embeds {rows}: it is not the tokenizer this model was trained with")
    return tokenizer


def import_official(source: str | Path, out: str | Path, *, config_path: Optional[str | Path] = None,
                    text_tokenizer: Optional[str | Path] = None, modalities: Optional[Sequence[str]] = None,
                    model_config: str | ModelConfig = DEFAULT_MODEL) -> ImportReport:
    """Map a published state dict onto the project's towers, merge adapters, check every key, write `out`."""
    source = Path(source)
    state = read_published(source)
    found = split_towers(state)[1].modalities
    chosen = _chosen_modalities(found, modalities, config_path)
    mapped, variant = to_project_keys(state, chosen)
    base = get_model_config(model_config) if isinstance(model_config, str) else model_config
    config = dataclasses.replace(base, modalities=chosen)
    text_rows = mapped.get("text.bert.embeddings.word_embeddings.weight")
    tokenizer = _text_tokenizer(chosen, text_tokenizer, config,
                                None if text_rows is None else int(text_rows.shape[0]))
    with torch.device("meta"):
        skeleton = CLIBD(config, tokenizer)
    check_fit(mapped, {k: v.shape for k, v in skeleton.state_dict().items()}, variant)
    del skeleton
    log.info("mapped %d tensors onto %s; building the model", len(mapped), ", ".join(chosen))
    model = CLIBD(config, tokenizer)
    if "logit_scale" not in mapped:
        mapped["logit_scale"] = model.logit_scale.detach().clone()
    model.load_state_dict(mapped, strict=True)
    digest = _sha256(source)
    extra = {"imported_from": source.name, "source_sha256": digest, "published_modalities": list(found),
             "old_prefixes": variant.old_prefixes}
    path = save_checkpoint(model.eval(), out, extra=extra)
    return ImportReport(out=path, modalities=chosen, variant=variant,
                        parameters=sum(p.numel() for p in model.parameters()), source_sha256=digest)
