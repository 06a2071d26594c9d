"""`Embedder`: raw images, barcodes and taxonomies in, numpy embeddings out."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Sequence, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from clibd.checkpoint import load_checkpoint
from clibd.model import CLIBD
from clibd.preprocess import ImageInput, eval_transform, load_image
from clibd.taxonomy import taxonomy_text
from clibd.torch_thread import on_torch_thread

T = TypeVar("T")


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Embedder:
    """Batches inputs onto a device (bf16 autocast on CUDA) and returns float32 numpy arrays."""

    def __init__(self, model: CLIBD, device: Optional[str | torch.device] = None, batch_size: int = 64,
                 progress: bool = False, pinned: bool = False) -> None:
        self.device = torch.device(device) if device else default_device()
        self.pinned = pinned  # every forward pass on the process's one torch thread (`clibd.torch_thread`)
        self._lock = threading.Lock()  # unpinned: one forward pass at a time, whichever thread asks
        self.model = self._call(lambda: model.to(self.device).eval())
        self.batch_size = batch_size
        self.progress = progress
        self.image_transform = eval_transform(model.config.preprocess)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: Optional[str | torch.device] = None,
                        batch_size: int = 64, progress: bool = False, pinned: bool = False) -> "Embedder":
        """An embedder over the model stored in a checkpoint file (`pinned`: loaded and run on the torch
        thread, for servers that encode from several threads)."""
        model = on_torch_thread(load_checkpoint, path) if pinned else load_checkpoint(path)
        return cls(model, device=device, batch_size=batch_size, progress=progress, pinned=pinned)

    def _call(self, fn: Callable[[], T]) -> T:
        """Run torch work one call at a time: on the torch thread when pinned, else under a lock."""
        if self.pinned:
            return on_torch_thread(fn)
        with self._lock:
            return fn()

    @property
    def embed_dim(self) -> int:
        """Size of every embedding."""
        return self.model.config.embed_dim

    def _run(self, items: Sequence[T], encode: Callable[[Sequence[T]], torch.Tensor], desc: str) -> np.ndarray:
        return self._call(lambda: self._encode_all(items, encode, desc))

    def _encode_all(self, items: Sequence[T], encode: Callable[[Sequence[T]], torch.Tensor], desc: str
                    ) -> np.ndarray:
        out = np.empty((len(items), self.embed_dim), dtype=np.float32)
        bar = tqdm(total=len(items), desc=desc, unit="item", disable=not self.progress)
        row = 0
        with torch.inference_mode(), autocast_for(self.device):
            for chunk in _batches(items, self.batch_size):
                out[row : row + len(chunk)] = encode(chunk).float().cpu().numpy()
                row += len(chunk)
                bar.update(len(chunk))
        bar.close()
        return out

    def encode_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Embeddings of PIL images or image file paths."""
        self.model.require("image")
        def encode(chunk: Sequence[ImageInput]) -> torch.Tensor:
            pixels = torch.stack([self.image_transform(load_image(img)) for img in chunk])
            return self.model.encode_image(pixels.to(self.device))
        return self._run(images, encode, "images")

    def encode_dna(self, sequences: Sequence[str]) -> np.ndarray:
        """Embeddings of DNA barcodes (raises InvalidSequenceError on non-IUPAC input)."""
        self.model.require("dna")
        prepend = self.model.config.dna.prepend_mask_token

        def encode(chunk: Sequence[str]) -> torch.Tensor:
            tok = self.model.dna_tokenizer(list(chunk), prepend_mask_token=prepend)
            return self.model.encode_dna(tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device))
        return self._run(sequences, encode, "barcodes")

    def encode_text(self, taxonomies: Sequence[Mapping[str, Optional[str]] | str]) -> np.ndarray:
        """Embeddings of taxonomy dicts (order..species) or ready-made taxonomy strings."""
        self.model.require("text")
        def encode(chunk: Sequence[Mapping[str, Optional[str]] | str]) -> torch.Tensor:
            tok = self.model.text_tokenizer([taxonomy_text(t) for t in chunk])
            return self.model.encode_text(tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device))
        return self._run(taxonomies, encode, "taxa")
