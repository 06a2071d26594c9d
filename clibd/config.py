"""Model configuration dataclasses, read from the JSON files in `model_configs/`; pydantic validates them
(types, nested sections, unknown keys refused)."""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Optional

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

_STRICT = ConfigDict(extra="forbid")

ALL_MODALITIES: tuple[str, ...] = ("image", "dna", "text")


@dataclass(config=_STRICT)
class PreprocessConfig:
    """How raw images become tensors (kept apart from the architecture, as timm does)."""

    image_size: int = 224
    resize_size: int = 256
    # None means pixels are fed in [0, 1] without normalisation (the official checkpoint's quirk).
    mean: Optional[tuple[float, float, float]] = (0.485, 0.456, 0.406)
    std: Optional[tuple[float, float, float]] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    # True: pixels become a [0, 1] tensor before the (antialiased) resize, as the official evaluation
    # transform does (ToTensor, Resize, CenterCrop); False: PIL resizes the image first.
    tensor_resize: bool = False
    train_rotation: float = 45.0
    train_scale: tuple[float, float] = (0.6, 1.0)


@dataclass(config=_STRICT)
class ImageTowerConfig:
    """A timm model by name, its keyword arguments and an optional local weights file."""

    model_name: str = "vit_base_patch16_224"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    weights: Optional[str] = None
    # Some checkpoints keep a `head` Linear instead of a separate projection.
    projection: str = "linear"  # "linear" | "head"


@dataclass(config=_STRICT)
class DnaTokenizerConfig:
    """BarcodeBERT k-mer tokenisation: k, stride and the padded sequence length in nucleotides."""

    k: int = 5
    stride: int = 5
    max_len: int = 660
    pad_char: str = "N"


@dataclass(config=_STRICT)
class DnaTowerConfig:
    """A transformers BERT over DNA k-mers."""

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    dropout: float = 0.1
    tokenizer: DnaTokenizerConfig = field(default_factory=DnaTokenizerConfig)
    # "mean": mean of last hidden states over real tokens; "official": MLM head with its decoder
    # replaced by Linear(hidden, hidden), softmax over channels, mean over all positions.
    pooling: str = "mean"
    prepend_mask_token: bool = False
    use_attention_mask: bool = True
    # Rows of the position-embedding table; None: just enough for the tokens (+1 for a prepended one).
    # The official checkpoint keeps BERT's 512.
    max_positions: Optional[int] = None
    weights: Optional[str] = None


@dataclass(config=_STRICT)
class TextTowerConfig:
    """A transformers BERT over the taxonomy string."""

    hidden_size: int = 512
    num_layers: int = 4
    num_heads: int = 8
    intermediate_size: int = 2048
    dropout: float = 0.1
    max_tokens: int = 20
    # "wordpiece": a WordPiece vocabulary fitted on the training taxonomy strings and stored in the
    # checkpoint; otherwise a local directory holding a BERT tokenizer (vocab.txt / tokenizer.json).
    tokenizer: str = "wordpiece"
    vocab_size: int = 4096
    # "mean_masked": mean over real tokens; "mean_all": mean over all max_tokens positions (official).
    pooling: str = "mean_masked"
    weights: Optional[str] = None


@dataclass(config=_STRICT)
class ModelConfig:
    """A whole CLIBD model: embedding size, temperature init and the three towers."""

    name: str = "custom"
    embed_dim: int = 768
    init_logit_scale: float = 2.6592600369262695  # log(1 / 0.07)
    image: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    dna: DnaTowerConfig = field(default_factory=DnaTowerConfig)
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    # The towers this model has; a model imported from an image+DNA file has no text tower.
    modalities: tuple[str, ...] = ALL_MODALITIES

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in ALL_MODALITIES]
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {ALL_MODALITIES}, got {self.modalities}")
        self.modalities = tuple(m for m in ALL_MODALITIES if m in self.modalities)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from plain JSON, rejecting unknown keys and wrong types so a typo never passes silently."""
        return cls(**data)
