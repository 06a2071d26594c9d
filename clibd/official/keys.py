"""The published CLIBD state dict's key names, its adapters, and their mapping onto the project's towers."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

# Each tower's prefix in the published files: current names first, then those of files before April 2025.
PREFIXES: dict[str, tuple[str, str]] = {
    "image": ("image_encoder.base_image_encoder.", "image_encoder.lora_vit."),
    "dna": ("dna_encoder.base_dna_encoder.", "dna_encoder.lora_barcode_bert."),
    "text": ("language_encoder.base_language_encoder.", "language_encoder.lora_bert."),
}
TEXT_PROJ = "language_encoder.proj."
LOGIT_SCALE = "logit_scale"
# Where each tower's keys go in the project's model.
TARGETS: dict[str, str] = {"image": "image.trunk.", "dna": "dna.mlm.", "text": "text.bert."}
# Published tensors the project's forward never reads: BERT's pooler (the text is mean-pooled) and the
# position-id buffers that files written with transformers 4.29 carry.
UNUSED = {"text": re.compile(r"^(pooler\.dense\.(weight|bias)|embeddings\.position_ids)$"),
          "dna": re.compile(r"^bert\.embeddings\.position_ids$"),
          "image": re.compile(r"^$")}
_VIT_WRAPPED = re.compile(r"^(blocks\.\d+\.attn\.qkv)\.(qkv\.weight|qkv\.bias|linear_[ab]_[qv]\.weight)$")
_BERT_LORA = re.compile(r"^(.*attention\.self\.(?:query|value))\.(w\.weight|w\.bias|w_a\.weight|w_b\.weight)$")


class PublishedKeyError(ValueError):
    """The published state dict does not fit the project's towers; the message names every key at fault."""


@dataclass
class Variant:
    """What an import found in the published file."""

    modalities: tuple[str, ...] = ()
    old_prefixes: bool = False
    vit_adapters_merged: int = 0
    bert_lora_merged: dict[str, int] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)
    logit_scale: bool = False


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def split_towers(state: dict[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], Variant]:
    """The file's tensors grouped by tower (keys relative to the tower's prefix); unknown keys refused."""
    towers: dict[str, dict[str, torch.Tensor]] = {}
    variant = Variant()
    unknown: list[str] = []
    seen_prefix: dict[str, set[str]] = {}
    for key, tensor in state.items():
        if key == LOGIT_SCALE:
            variant.logit_scale = True
            continue
        if key.startswith(TEXT_PROJ):
            towers.setdefault("text_proj", {})[key[len(TEXT_PROJ):]] = tensor
            continue
        for tower, prefixes in PREFIXES.items():
            hit = next((p for p in prefixes if key.startswith(p)), None)
            if hit is not None:
                towers.setdefault(tower, {})[key[len(hit):]] = tensor
                seen_prefix.setdefault(tower, set()).add(hit)
                variant.old_prefixes |= hit == prefixes[1]
                break
        else:
            unknown.append(key)
    if unknown:
        raise PublishedKeyError(f"unexpected keys outside the published towers: {_listing(sorted(unknown))}")
    mixed = [t for t, p in seen_prefix.items() if len(p) > 1]
    if mixed:
        raise PublishedKeyError(f"both old and new prefixes for the {', '.join(mixed)} tower(s): "
                                f"{_listing(sorted(p for t in mixed for p in seen_prefix[t]))}")
    if "text_proj" in towers and "text" not in towers:
        raise PublishedKeyError(f"{TEXT_PROJ}* without a language encoder ({PREFIXES['text'][0]}*)")
    variant.modalities = tuple(t for t in PREFIXES if t in towers)
    if not variant.modalities:
        raise PublishedKeyError("no image_encoder, dna_encoder or language_encoder keys: not a CLIBD state dict")
    return towers, variant


def _low_rank(b: torch.Tensor, a: torch.Tensor, where: str) -> torch.Tensor:
    if b.dim() != 2 or a.dim() != 2 or b.shape[1] != a.shape[0]:
        raise PublishedKeyError(f"{where}: adapter shapes {tuple(b.shape)} @ {tuple(a.shape)} do not chain")
    return b.double() @ a.double()


def _grouped(tower: dict[str, torch.Tensor], pattern: re.Pattern
             ) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """The tensors `pattern` does not match, and those it does grouped by its first group (the wrapped layer)."""
    rest: dict[str, torch.Tensor] = {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tower.items():
        m = pattern.match(key)
        if m:
            groups.setdefault(m.group(1), {})[m.group(2)] = tensor
        else:
            rest[key] = tensor
    return rest, groups


def merge_vit_adapters(tower: dict[str, torch.Tensor], variant: Variant) -> dict[str, torch.Tensor]:
    """Fold each block's rank-r q/v adapters into its fused qkv: rows [0, d) += B_q A_q, [2d, 3d) += B_v A_v."""
    out, wrapped = _grouped(tower, _VIT_WRAPPED)
    for base, parts in sorted(wrapped.items()):
        needed = ["qkv.weight", "linear_a_q.weight", "linear_b_q.weight", "linear_a_v.weight", "linear_b_v.weight"]
        missing = [f"{base}.{n}" for n in needed if n not in parts]
        if missing:
            raise PublishedKeyError(f"image tower: adapter keys missing: {_listing(missing)}")
        if f"{base}.weight" in out:
            raise PublishedKeyError(f"image tower: {base} holds both a plain and an adapter-wrapped qkv")
        weight = parts["qkv.weight"]
        dim = weight.shape[1]
        if weight.dim() != 2 or weight.shape[0] != 3 * dim:
            raise PublishedKeyError(f"image tower: {base}.qkv.weight has shape {tuple(weight.shape)}, "
                                    f"expected (3*d, d)")
        merged = weight.double().clone()
        merged[:dim] += _low_rank(parts["linear_b_q.weight"], parts["linear_a_q.weight"], base)
        merged[2 * dim:] += _low_rank(parts["linear_b_v.weight"], parts["linear_a_v.weight"], base)
        out[f"{base}.weight"] = merged.to(weight.dtype)
        if "qkv.bias" in parts:
            out[f"{base}.bias"] = parts["qkv.bias"]
        variant.vit_adapters_merged += 1
    return out


def merge_bert_lora(tower: dict[str, torch.Tensor], name: str, variant: Variant) -> dict[str, torch.Tensor]:
    """Fold LoRA-path query/value layers (`w`, `w_a`, `w_b`) into plain Linears: W = w + w_b @ w_a."""
    out, wrapped = _grouped(tower, _BERT_LORA)
    for base, parts in sorted(wrapped.items()):
        missing = [f"{base}.{n}" for n in ("w.weight", "w_a.weight", "w_b.weight") if n not in parts]
        if missing:
            raise PublishedKeyError(f"{name} tower: LoRA keys missing: {_listing(missing)}")
        if f"{base}.weight" in out:
            raise PublishedKeyError(f"{name} tower: {base} holds both a plain and a LoRA-path Linear")
        weight = parts["w.weight"]
        out[f"{base}.weight"] = (weight.double() + _low_rank(parts["w_b.weight"], parts["w_a.weight"], base)
                                 ).to(weight.dtype)
        if "w.bias" in parts:
            out[f"{base}.bias"] = parts["w.bias"]
    if wrapped:
        variant.bert_lora_merged[name] = len(wrapped)
    return out


def to_project_keys(state: dict[str, torch.Tensor], modalities: tuple[str, ...]
                    ) -> tuple[dict[str, torch.Tensor], Variant]:
    """The published tensors of `modalities`, adapters merged, under the project model's key names."""
    towers, variant = split_towers(state)
    absent = [m for m in modalities if m not in towers]
    if absent:
        raise PublishedKeyError(f"the file has no {', '.join(absent)} tower (it holds "
                                f"{', '.join(variant.modalities)}); choose --modalities among those")
    mapped: dict[str, torch.Tensor] = {}
    for modality in modalities:
        tower = towers[modality]
        tower = (merge_vit_adapters(tower, variant) if modality == "image"
                 else merge_bert_lora(tower, modality, variant))
        for key, tensor in tower.items():
            if UNUSED[modality].match(key):
                variant.unused.append(PREFIXES[modality][int(variant.old_prefixes)] + key)
                continue
            mapped[TARGETS[modality] + key] = tensor
        if modality == "text":
            for key, tensor in towers.get("text_proj", {}).items():
                mapped["text.proj." + key] = tensor
    if variant.logit_scale:
        mapped[LOGIT_SCALE] = state[LOGIT_SCALE]
    return mapped, variant


def published_name(project_key: str, variant: Variant) -> str:
    """The published key a project key comes from (for error messages)."""
    if project_key.startswith("text.proj."):
        return TEXT_PROJ + project_key[len("text.proj."):]
    for modality, target in TARGETS.items():
        if project_key.startswith(target):
            return PREFIXES[modality][int(variant.old_prefixes)] + project_key[len(target):]
    return project_key


def check_fit(mapped: dict[str, torch.Tensor], expected: dict[str, torch.Size], variant: Variant) -> None:
    """Refuse, naming the published keys, when any tensor is missing, unexpected or mis-shaped."""
    optional = {LOGIT_SCALE}  # the temperature does not change embeddings; older files may lack it
    missing = sorted(published_name(k, variant) for k in expected if k not in mapped and k not in optional)
    unexpected = sorted(published_name(k, variant) for k in mapped if k not in expected)
    shaped = sorted(f"{published_name(k, variant)} {tuple(mapped[k].shape)} (expected {tuple(expected[k])})"
                    for k in mapped if k in expected and tuple(mapped[k].shape) != tuple(expected[k]))
    problems = []
    if missing:
        problems.append(f"missing: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected: {_listing(unexpected)}")
    if shaped:
        problems.append(f"mis-shaped: {_listing(shaped)}")
    if problems:
        raise PublishedKeyError("the published state dict does not fit the model config; " + "; ".join(problems))
