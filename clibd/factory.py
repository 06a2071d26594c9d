"""`create_model(name)`: model architectures from small JSON configs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

from clibd.config import ModelConfig
from clibd.model import CLIBD
from clibd.text_tokenizer import TextTokenizer

CONFIG_DIR = Path(__file__).parent / "model_configs"


def list_models() -> list[str]:
    """Names of the built-in model configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def get_model_config(name: str) -> ModelConfig:
    """The config of a built-in model name, or of a JSON file path."""
    path = Path(name)
    if not path.suffix == ".json":
        path = CONFIG_DIR / f"{name}.json"
        if not path.exists():
            raise ValueError(f"unknown model {name!r}; built-in models: {', '.join(list_models())}")
    data = json.loads(path.read_text())
    data.setdefault("name", path.stem)
    return ModelConfig.from_dict(data)


def build_text_tokenizer(config: ModelConfig, corpus: Optional[Iterable[str]] = None) -> TextTokenizer:
    """The text tokenizer a config asks for: fitted on `corpus`, or read from a local directory."""
    text = config.text
    if text.tokenizer == "wordpiece":
        return TextTokenizer.fit(corpus or [], text.vocab_size, text.max_tokens)
    return TextTokenizer.from_dir(text.tokenizer, text.max_tokens)


def create_model(
    name_or_config: str | ModelConfig,
    text_corpus: Optional[Iterable[str]] = None,
    text_tokenizer: Optional[TextTokenizer] = None,
) -> CLIBD:
    """A fresh model (tower weights from local files where the config names them)."""
    config = get_model_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    tokenizer = text_tokenizer or build_text_tokenizer(config, text_corpus)
    return CLIBD(config, tokenizer)
