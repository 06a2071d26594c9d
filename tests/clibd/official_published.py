"""A stand-in for the published CLIBD model, written from the published state dict's description alone:
its module names produce the published keys, and its forward is the published one (adapters applied on the
fly, [0,1] pixels, `<MASK>` prepended without attention mask, softmax-mean DNA pooling, text mean over all
20 positions). Tests use it to check the importer against a computation that shares none of its code."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms as T
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

RANK = 4


@dataclass(frozen=True)
class Dims:
    """Tower sizes; `FULL` is the published model, `TINY` keeps every quirk at a size that runs in seconds."""

    vit_depth: int
    vit_width: int
    vit_heads: int
    img_size: int
    dna_layers: int
    dna_width: int
    dna_heads: int
    dna_ffn: int
    text_layers: int
    text_width: int
    text_heads: int
    text_ffn: int
    embed_dim: int


FULL = Dims(12, 768, 12, 224, 12, 768, 12, 3072, 4, 512, 8, 2048, 768)
TINY = Dims(2, 48, 4, 64, 2, 32, 4, 64, 2, 32, 4, 64, 32)


class AdaptedQkv(nn.Module):
    """The published ViT block's fused qkv with rank-4 q and v adapters added to its output."""

    def __init__(self, qkv: nn.Linear) -> None:
        super().__init__()
        d = qkv.in_features
        self.qkv = qkv
        self.linear_a_q, self.linear_b_q = nn.Linear(d, RANK, bias=False), nn.Linear(RANK, d, bias=False)
        self.linear_a_v, self.linear_b_v = nn.Linear(d, RANK, bias=False), nn.Linear(RANK, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.qkv.in_features
        out = self.qkv(x)
        q = out[..., :d] + self.linear_b_q(self.linear_a_q(x))
        v = out[..., 2 * d:] + self.linear_b_v(self.linear_a_v(x))
        return torch.cat([q, out[..., d:2 * d], v], dim=-1)


class LoraPath(nn.Module):
    """A LoRA-path BERT query/value Linear: w(x) + w_b(w_a(x))."""

    def __init__(self, w: nn.Linear) -> None:
        super().__init__()
        self.w = w
        self.w_a = nn.Linear(w.in_features, RANK, bias=False)
        self.w_b = nn.Linear(RANK, w.out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w(x) + self.w_b(self.w_a(x))


class Holder(nn.Module):
    """A named container, so keys come out as `<encoder>.<inner name>.*`."""


def _bert_config(vocab: int, width: int, layers: int, heads: int, ffn: int) -> BertConfig:
    return BertConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=ffn, max_position_embeddings=512)


class PublishedModel(nn.Module):
    """image_encoder / dna_encoder / language_encoder as the published files name them."""

    def __init__(self, dims: Dims, text_vocab: int, modalities: tuple[str, ...] = ("image", "dna", "text"),
                 old_prefixes: bool = False, lora_path: bool = False) -> None:
        super().__init__()
        self.dims = dims
        self.logit_scale = nn.Parameter(torch.tensor(2.6592600369262695))
        # Plain references (not submodules), so each tensor has only its published name.
        self.__dict__["towers"] = {}
        if "image" in modalities:
            vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=dims.embed_dim,
                                    depth=dims.vit_depth, embed_dim=dims.vit_width, num_heads=dims.vit_heads,
                                    img_size=dims.img_size)
            for block in vit.blocks:
                block.attn.qkv = AdaptedQkv(block.attn.qkv)
            self.image_encoder = Holder()
            self.image_encoder.add_module("lora_vit" if old_prefixes else "base_image_encoder", vit)
            self.towers["image"] = vit
        if "dna" in modalities:
            mlm = BertForMaskedLM(_bert_config(1027, dims.dna_width, dims.dna_layers, dims.dna_heads, dims.dna_ffn))
            mlm.cls.predictions.decoder = nn.Linear(dims.dna_width, dims.embed_dim)
            if lora_path:
                for layer in mlm.bert.encoder.layer:
                    layer.attention.self.query = LoraPath(layer.attention.self.query)
                    layer.attention.self.value = LoraPath(layer.attention.self.value)
            self.dna_encoder = Holder()
            self.dna_encoder.add_module("lora_barcode_bert" if old_prefixes else "base_dna_encoder", mlm)
            self.towers["dna"] = mlm
        if "text" in modalities:
            bert = BertModel(_bert_config(text_vocab, dims.text_width, dims.text_layers, dims.text_heads,
                                          dims.text_ffn))
            if lora_path:
                for layer in bert.encoder.layer:
                    layer.attention.self.query = LoraPath(layer.attention.self.query)
                    layer.attention.self.value = LoraPath(layer.attention.self.value)
            self.language_encoder = Holder()
            self.language_encoder.add_module("lora_bert" if old_prefixes else "base_language_encoder", bert)
            self.language_encoder.proj = nn.Linear(dims.text_width, dims.embed_dim)
            self.towers["text"] = bert

    def randomize(self, seed: int = 0) -> "PublishedModel":
        """Every tensor random (adapters included, so merging them matters)."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                norm_gain = "norm" in name.lower() and name.endswith("weight")
                p.copy_((1.0 if norm_gain else 0.0) + 0.05 * torch.randn(p.shape, generator=gen))
        return self.eval()

    def without_adapters(self) -> None:
        """Zero every adapter (to show that they change the embeddings)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "linear_b_" in name or name.endswith("w_b.weight"):
                    p.zero_()

    def embed_image(self, image: Image.Image) -> torch.Tensor:
        """The published evaluation transform (ToTensor, Resize 256/224 ratio, CenterCrop), no normalisation."""
        size = self.dims.img_size
        resize = 256 if size == 224 else size + size // 8
        pixels = T.Compose([T.ToTensor(), T.Resize(resize, antialias=True), T.CenterCrop(size)])(image)
        return F.normalize(self.towers["image"](pixels[None]), dim=-1)[0]

    def embed_dna(self, barcode: str) -> torch.Tensor:
        """Pad/truncate to 660 with N, 5-mers at stride 5, <MASK>=0 first, no attention mask, softmax mean."""
        vocab = {tok: i for i, tok in enumerate(["<MASK>", "<CLS>", "<UNK>"] +
                                                ["".join(p) for p in itertools.product("ACGT", repeat=5)])}
        seq = (barcode[:660] + "N" * 660)[:660]
        ids = [0] + [vocab.get(seq[i:i + 5], 2) for i in range(0, 656, 5)]
        logits = self.towers["dna"](input_ids=torch.tensor([ids])).logits
        return F.normalize(logits.softmax(dim=-1).mean(dim=1), dim=-1)[0]

    def embed_text(self, text: str, vocab_file: Path) -> torch.Tensor:
        """BERT tokenizer padded to 20 tokens, last hidden states averaged over all 20, then `proj`."""
        tokenizer = BertTokenizer(str(vocab_file), do_lower_case=True)
        enc = tokenizer([text], padding="max_length", max_length=20, truncation=True, return_tensors="pt")
        hidden = self.towers["text"](input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           token_type_ids=enc["token_type_ids"]).last_hidden_state
        return F.normalize(self.language_encoder.proj(hidden.mean(dim=1)), dim=-1)[0]


def write_vocab(path: Path, size: int | None = None) -> Path:
    """A WordPiece vocab.txt: the specials, words of taxonomy strings, every letter; padded to `size`."""
    words = ["[PAD]"] + [f"[unused{i}]" for i in range(3)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += ["not", "_", "classified", "diptera", "lepidoptera", "cecidomyiidae", "noctuidae", "##idae"]
    letters = "abcdefghijklmnopqrstuvwxyz"
    words += list(letters) + [f"##{c}" for c in letters]
    if size is not None:
        words += [f"filler{i}" for i in range(size - len(words))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(words) + "\n")
    return path
