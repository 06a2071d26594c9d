import dataclasses

import pytest
import torch

from clibd import (Embedder, ModelConfig, checkpoint_hash, create_model, get_model_config, list_models,
                   load_checkpoint, save_checkpoint)
from clibd.dna_tokenizer import KmerTokenizer

CORPUS = ["Diptera Culicidae Aedes Aedes vexans", "Coleoptera Carabidae Abax Abax parallelepipedus"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("clibd-tiny", text_corpus=CORPUS).eval()


def test_builtin_configs_parse_with_the_papers_shapes():
    assert {"clibd-tiny", "clibd-base", "clibd-official"} <= set(list_models())
    base = get_model_config("clibd-base")
    assert base.embed_dim == 768 and base.image.model_name == "vit_base_patch16_224"
    assert (base.dna.num_layers, base.dna.hidden_size, base.text.num_layers, base.text.hidden_size) == (12, 768, 4, 512)
    official = get_model_config("clibd-official")
    assert official.preprocess.mean is None and official.dna.prepend_mask_token
    assert official.dna.pooling == "official" and not official.dna.use_attention_mask
    assert official.text.pooling == "mean_all"


def test_unknown_config_key_and_model_name_fail_loudly():
    with pytest.raises(ValueError, match=r"embed_dimm\s+Unexpected keyword argument"):
        ModelConfig.from_dict({"embed_dimm": 3})
    with pytest.raises(ValueError, match=r"dna.num_layers\s+Input should be a valid integer"):
        ModelConfig.from_dict({"dna": {"num_layers": "two"}})
    with pytest.raises(ValueError, match="modalities must be a non-empty subset"):
        ModelConfig.from_dict({"modalities": ["sound"]})
    with pytest.raises(ValueError, match="unknown model"):
        get_model_config("no-such-model")


def test_three_towers_give_normalised_embeddings(tiny):
    dna = KmerTokenizer()(["ACGT" * 100, "TTGA" * 80])
    text = tiny.text_tokenizer(CORPUS)
    with torch.no_grad():
        out = tiny({"image": torch.randn(2, 3, 64, 64), "dna_input_ids": dna["input_ids"],
                    "dna_attention_mask": dna["attention_mask"], "text_input_ids": text["input_ids"],
                    "text_attention_mask": text["attention_mask"]})
    for m in ("image", "dna", "text"):
        assert out[m].shape == (2, 128)
        assert torch.allclose(out[m].norm(dim=-1), torch.ones(2), atol=1e-5)
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-4)


def test_dna_padding_positions_do_not_influence_the_default_embedding(tiny):
    """Mean pooling over real tokens with an attention mask: what sits in padded positions is ignored."""
    batch = KmerTokenizer()(["ACGTAACGTT" * 20])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    other = ids.clone()
    other[mask == 0] = 7  # a real k-mer id instead of the <UNK> padding
    with torch.no_grad():
        a = tiny.encode_dna(ids, mask)
        b = tiny.encode_dna(other, mask)
        c = tiny.encode_dna(other, torch.ones_like(mask))  # unmasked, the same ids do change the result
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def test_checkpoint_roundtrip_rebuilds_identical_outputs(tiny, tmp_path):
    path = save_checkpoint(tiny, tmp_path / "m.pt", {"note": "x"})
    again = load_checkpoint(path)
    e1, e2 = Embedder(tiny, device="cpu"), Embedder(again, device="cpu")
    seqs = ["ACGTTGCA" * 70]
    assert (e1.encode_dna(seqs) == e2.encode_dna(seqs)).all()
    assert (e1.encode_text([{"order": "Diptera"}]) == e2.encode_text([{"order": "Diptera"}])).all()
    assert len(checkpoint_hash(path)) == 64


def test_official_quirks_mode_builds_and_encodes():
    cfg = get_model_config("clibd-tiny")
    cfg = dataclasses.replace(cfg, dna=dataclasses.replace(cfg.dna, pooling="official", prepend_mask_token=True,
                                                            use_attention_mask=False),
                              text=dataclasses.replace(cfg.text, pooling="mean_all"),
                              preprocess=dataclasses.replace(cfg.preprocess, mean=None, std=None))
    model = create_model(cfg, text_corpus=CORPUS)
    assert model.dna.mlm.cls.predictions.decoder.out_features == cfg.dna.hidden_size
    emb = Embedder(model, device="cpu").encode_dna(["ACGT" * 100])
    assert emb.shape == (1, 128)


def test_grad_checkpointing_switches_on_every_tower(tiny):
    tiny.set_grad_checkpointing(True)
    assert tiny.dna.mlm.bert.encoder.layer[0].gradient_checkpointing and tiny.text.bert.encoder.layer[0].gradient_checkpointing
    assert tiny.image.trunk.grad_checkpointing
    tiny.set_grad_checkpointing(False)
    assert not tiny.dna.mlm.bert.encoder.layer[0].gradient_checkpointing


@pytest.mark.slow
def test_paper_sized_base_model_builds_and_encodes():
    model = create_model("clibd-base", text_corpus=CORPUS).eval()
    n_params = sum(p.numel() for p in model.parameters())
    text_vocab = model.text.bert.embeddings.word_embeddings.weight.numel()
    # The paper's I+D+T model has about 203M parameters with BERT's 30,522-word vocabulary in the text tower.
    assert abs(n_params - text_vocab + 30522 * 512 - 203e6) < 2e6
    emb = Embedder(model, device="cpu", batch_size=2)
    assert emb.encode_dna(["ACGT" * 160]).shape == (1, 768)
    assert emb.encode_images([__import__("PIL.Image", fromlist=["Image"]).new("RGB", (300, 200))]).shape == (1, 768)
