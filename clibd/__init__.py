"""CLIBD model library: image, DNA-barcode and taxonomy-text towers in one embedding space."""
from clibd.checkpoint import checkpoint_hash, load_checkpoint, save_checkpoint
from clibd.config import ModelConfig
from clibd.dna_tokenizer import InvalidSequenceError, KmerTokenizer, normalize_sequence
from clibd.embedder import Embedder
from clibd.factory import create_model, get_model_config, list_models
from clibd.model import CLIBD, MODALITIES
from clibd.taxonomy import RANKS, taxonomy_text

__all__ = [
    "CLIBD", "MODALITIES", "RANKS", "Embedder", "InvalidSequenceError", "KmerTokenizer", "ModelConfig",
    "checkpoint_hash", "create_model", "get_model_config", "list_models", "load_checkpoint",
    "normalize_sequence", "save_checkpoint", "taxonomy_text",
]
