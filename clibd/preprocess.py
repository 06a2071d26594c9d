"""Image preprocessing for evaluation and training, driven by `PreprocessConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from clibd.config import PreprocessConfig

ImageInput = Image.Image | str | Path


def load_image(image: ImageInput) -> Image.Image:
    """An RGB PIL image from a PIL image or a file path."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    with Image.open(image) as img:
        return img.convert("RGB")


def _normalise(cfg: PreprocessConfig) -> list[Callable]:
    return [T.Normalize(cfg.mean, cfg.std)] if cfg.mean is not None and cfg.std is not None else []


def _tail(cfg: PreprocessConfig) -> list[Callable]:
    return [T.ToTensor(), *_normalise(cfg)]


def eval_transform(cfg: PreprocessConfig) -> Callable[[Image.Image], torch.Tensor]:
    """Resize the short side, centre-crop, to tensor, normalise (or to tensor first, `tensor_resize`)."""
    interp = InterpolationMode(cfg.interpolation)
    if cfg.tensor_resize:
        return T.Compose([T.ToTensor(), T.Resize(cfg.resize_size, interpolation=interp, antialias=True),
                          T.CenterCrop(cfg.image_size), *_normalise(cfg)])
    return T.Compose([T.Resize(cfg.resize_size, interpolation=interp), T.CenterCrop(cfg.image_size),
                      *_tail(cfg)])


def train_transform(cfg: PreprocessConfig) -> Callable[[Image.Image], torch.Tensor]:
    """Resize, random resized crop, horizontal and vertical flips, rotation, to tensor, normalise."""
    interp = InterpolationMode(cfg.interpolation)
    return T.Compose([
        T.Resize(cfg.resize_size, interpolation=interp),
        T.RandomResizedCrop(cfg.image_size, scale=tuple(cfg.train_scale), interpolation=interp),
        T.RandomHorizontalFlip(),
        T.RandomVerticalFlip(),
        T.RandomRotation(cfg.train_rotation, interpolation=InterpolationMode.BILINEAR),
        *_tail(cfg),
    ])
