"""BarcodeBERT k-mer tokenizer for DNA barcodes."""
from __future__ import annotations

import itertools
import re
from typing import Optional

import torch

from clibd.config import DnaTokenizerConfig

SPECIALS: tuple[str, ...] = ("<MASK>", "<CLS>", "<UNK>")
MASK_ID, CLS_ID, UNK_ID = 0, 1, 2
NUCLEOTIDES = "ACGT"
# IUPAC ambiguity codes are legal in a barcode; any k-mer containing one maps to <UNK>.
IUPAC_AMBIGUOUS = "RYKMSWBDHVN"
_GAPS = re.compile(r"[-.~\s]")
_ILLEGAL = re.compile(f"[^{NUCLEOTIDES}{IUPAC_AMBIGUOUS}]")


class InvalidSequenceError(ValueError):
    """A barcode that holds characters that are not IUPAC nucleotide codes, or nothing at all."""


# A sequence as a GenBank record prints it: "ORIGIN", then lines of a position and blocks of ten bases, then "//".
_GENBANK_LINE = re.compile(r"\s*\d+(?:[ \t]+[A-Za-z]+)+\s*")


def _genbank_bases(text: str) -> Optional[str]:
    """The bases of a GenBank record's ORIGIN block (every line a position and bases), else None."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].strip().upper() == "ORIGIN":
        lines = lines[1:]
    if lines and lines[-1].strip() == "//":
        lines = lines[:-1]
    if not lines or not all(_GENBANK_LINE.fullmatch(line) for line in lines):
        return None
    return "".join(line.lstrip().lstrip("0123456789") for line in lines)


def normalize_sequence(sequence: str) -> str:
    """Upper-case, RNA `U` read as `T`, alignment gaps and whitespace removed (and a GenBank record's position
    numbers, where it is laid out as one); reject non-IUPAC letters."""
    genbank = _genbank_bases(sequence) if sequence[:1].isspace() or sequence[:1].isdigit() or \
        sequence.lstrip()[:6].upper() == "ORIGIN" else None
    seq = _GAPS.sub("", (genbank or sequence).upper()).replace("U", "T")
    bad = _ILLEGAL.search(seq)
    if bad:
        hint = (" (a GenBank sequence is read with its position numbers when every line is a number and blocks "
                "of bases; otherwise give the bases alone)" if bad.group().isdigit() else "")
        raise InvalidSequenceError(
            f"character {bad.group()!r} at position {bad.start() + 1} is not an IUPAC nucleotide code{hint}"
        )
    if not seq:
        raise InvalidSequenceError("the sequence is empty")
    return seq


MIN_BARCODE_LENGTH = 100
MAX_BARCODE_LENGTH = 3_000


def identifiable_barcode(sequence: str, name: str = "barcode", min_length: int = MIN_BARCODE_LENGTH,
                         max_length: int = MAX_BARCODE_LENGTH) -> str:
    """The normalised barcode of a specimen to identify, or InvalidSequenceError saying what is wrong with it
    (the service and `clibd identify` apply the same rules): DNA, not RNA; IUPAC letters; between `min_length`
    and `max_length` letters, with at least `min_length` determined bases (ambiguity codes say nothing)."""
    rna = re.search(r"[Uu]", sequence)
    if rna:
        raise InvalidSequenceError(f"{name} contains U at position {rna.start() + 1}: that is RNA; submit the DNA "
                                   f"barcode (T)")
    try:
        seq = normalize_sequence(sequence)
    except InvalidSequenceError as exc:
        raise InvalidSequenceError(f"{name}: {exc}") from None
    if len(seq) < min_length:
        raise InvalidSequenceError(f"{name} has {len(seq)} nucleotides; at least {min_length} are needed (a COI "
                                   f"barcode has about 658)")
    if len(seq) > max_length:
        raise InvalidSequenceError(f"{name} has {len(seq)} nucleotides; at most {max_length} are accepted (a COI "
                                   f"barcode has about 658)")
    determined = sum(map(seq.count, "ACGT"))
    if determined < min_length:  # ambiguity codes align with anything and say nothing
        raise InvalidSequenceError(f"{name} has {len(seq)} nucleotides but only {determined} determined bases (A, C, "
                                   f"G, T; the rest are N or other ambiguity codes); at least {min_length} are needed")
    return seq


def try_normalize(sequence: Optional[str]) -> Optional[str]:
    """The normalised barcode, or None when it is missing or not a valid IUPAC sequence."""
    if not sequence:
        return None
    try:
        return normalize_sequence(sequence)
    except InvalidSequenceError:
        return None


class KmerTokenizer:
    """Splits a barcode into k-mers (non-overlapping by default) over a fixed 4^k + 3 vocabulary."""

    def __init__(self, config: DnaTokenizerConfig | None = None) -> None:
        self.config = config or DnaTokenizerConfig()
        k = self.config.k
        if k < 1 or self.config.stride < 1 or self.config.max_len < k:
            raise ValueError(f"invalid k-mer settings: {self.config}")
        kmers = ["".join(p) for p in itertools.product(NUCLEOTIDES, repeat=k)]
        self.vocab: dict[str, int] = {tok: i for i, tok in enumerate(SPECIALS + tuple(kmers))}

    @property
    def vocab_size(self) -> int:
        """Number of token ids (3 specials + 4^k)."""
        return len(self.vocab)

    @property
    def num_tokens(self) -> int:
        """Tokens per sequence after padding/truncation to `max_len`."""
        return (self.config.max_len - self.config.k) // self.config.stride + 1

    def tokenize(self, sequence: str) -> tuple[list[int], int]:
        """Token ids of one barcode and how many of them cover real (non-padding) nucleotides."""
        cfg = self.config
        seq = normalize_sequence(sequence)[: cfg.max_len]
        real = len(seq)
        seq = seq + cfg.pad_char * (cfg.max_len - real)
        ids = []
        n_real = 0
        for start in range(0, cfg.max_len - cfg.k + 1, cfg.stride):
            ids.append(self.vocab.get(seq[start : start + cfg.k], UNK_ID))
            if start < real:
                n_real += 1
        return ids, n_real

    def __call__(
        self, sequences: list[str], prepend_mask_token: bool = False
    ) -> dict[str, torch.Tensor]:
        """Batch of `input_ids` and `attention_mask` (1 for tokens overlapping the real sequence)."""
        n = self.num_tokens + (1 if prepend_mask_token else 0)
        input_ids = torch.empty((len(sequences), n), dtype=torch.long)
        mask = torch.zeros((len(sequences), n), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids, n_real = self.tokenize(sequence)
            if prepend_mask_token:
                ids = [MASK_ID] + ids
                n_real += 1
            input_ids[row] = torch.tensor(ids)
            mask[row, :n_real] = 1
        return {"input_ids": input_ids, "attention_mask": mask}
