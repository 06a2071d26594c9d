import pytest
import torch
from safetensors.torch import save_file

from clibd import create_model, get_model_config


def test_tower_weights_load_from_file_and_directory_with_any_prefix(tmp_path):
    src = create_model("clibd-tiny")
    image_sd = {f"module.{k}": v for k, v in src.image.trunk.state_dict().items()}
    torch.save({"state_dict": image_sd}, tmp_path / "image.pt")
    (tmp_path / "dna").mkdir()
    save_file({k: v.clone().contiguous() for k, v in src.dna.mlm.state_dict().items()}, tmp_path / "dna" / "model.safetensors")
    cfg = get_model_config("clibd-tiny")
    cfg.image.weights = str(tmp_path / "image.pt")
    cfg.dna.weights = str(tmp_path / "dna")
    loaded = create_model(cfg, text_tokenizer=src.text_tokenizer)
    for a, b in zip(src.image.trunk.state_dict().values(), loaded.image.trunk.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(src.dna.mlm.bert.embeddings.word_embeddings.weight,
                       loaded.dna.mlm.bert.embeddings.word_embeddings.weight)


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "w.pt")
    cfg = get_model_config("clibd-tiny")
    cfg.image.weights = str(tmp_path / "w.pt")
    with pytest.raises(ValueError, match="tensors match"):
        create_model(cfg)
    cfg.image.weights = str(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        create_model(cfg)
