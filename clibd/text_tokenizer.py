"""Tokenizer for taxonomy strings: a fitted WordPiece vocabulary, or a local BERT tokenizer."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class TextTokenizer:
    """Wraps a `tokenizers.Tokenizer` with padding/truncation to a fixed number of tokens."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        pad_id = tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad_id is None else pad_id
        tokenizer.enable_truncation(max_tokens)
        tokenizer.enable_padding(pad_id=self.pad_id, pad_token="[PAD]", length=max_tokens)

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int, max_tokens: int) -> "TextTokenizer":
        """Fit a lower-cased WordPiece vocabulary on taxonomy strings (new names split into pieces)."""
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        # Every letter is in the alphabet, so an unseen name never becomes [UNK] as a whole.
        alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789_.-()'")
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet, min_frequency=1,
            show_progress=False,
        )
        # One word per letter, each letter also in word-continuing position ("##x"), so every name
        # spelled with these letters has a tokenisation.
        cover = " ".join("a" + c for c in alphabet)
        tok.train_from_iterator([*texts, cover], trainer=trainer)
        tok.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        return cls(tok, max_tokens)

    @classmethod
    def from_json(cls, data: str, max_tokens: int) -> "TextTokenizer":
        """Rebuild from the JSON stored in a checkpoint."""
        return cls(Tokenizer.from_str(data), max_tokens)

    @classmethod
    def from_dir(cls, path: str | Path, max_tokens: int) -> "TextTokenizer":
        """Load a BERT tokenizer from a local directory (tokenizer.json, or vocab.txt)."""
        path = Path(path)
        if (path / "tokenizer.json").exists():
            return cls(Tokenizer.from_file(str(path / "tokenizer.json")), max_tokens)
        vocab = path / "vocab.txt"
        if not vocab.exists():
            raise FileNotFoundError(f"no tokenizer.json or vocab.txt in {path}")
        from tokenizers.implementations import BertWordPieceTokenizer

        bert = BertWordPieceTokenizer(str(vocab), lowercase=True)
        return cls(Tokenizer.from_str(bert.to_str()), max_tokens)

    def to_json(self) -> str:
        """Serialised form for checkpoints."""
        return self.tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return self.tokenizer.get_vocab_size()

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Batch of `input_ids` and `attention_mask`, each `max_tokens` long."""
        encodings = self.tokenizer.encode_batch(texts)
        return {
            "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),
        }
