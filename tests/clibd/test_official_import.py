"""`clibd import-official`: published state dicts (built here with the published names and shapes) become
project checkpoints whose embeddings equal the published forward."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from clibd.checkpoint import load_checkpoint, read_checkpoint
from clibd.cli import main as clibd_main
from clibd.config import ModelConfig
from clibd.embedder import Embedder
from clibd.factory import CONFIG_DIR, get_model_config
from clibd.model import CLIBD, MissingModalityError
from clibd.official import PublishedKeyError, import_official
from clibd.official.keys import check_fit, to_project_keys
from clibd.text_tokenizer import TextTokenizer
from tests.clibd.official_published import FULL, TINY, PublishedModel, write_vocab

BARCODES = ["AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCTGAATTAGGAAACCCAGGATC" * 3,
            "TTTATACTTTTTATTTTTGGTATCTGATCAGGTATAGTGGGAACAGCTCTTAGAATTATTATTCGAACAGAACTAGGTNNNACCCGGAA",
            "ACGT" * 200]  # longer than 660: truncated
TAXA = [{"order": "Diptera", "family": "Cecidomyiidae", "genus": None, "species": None},
        {"order": "Lepidoptera", "family": "Noctuidae", "genus": "Agrotis", "species": "Agrotis ipsilon"}]


def tiny_config() -> ModelConfig:
    """clibd-official with every quirk kept and the towers shrunk to `TINY`."""
    data = json.loads((CONFIG_DIR / "clibd-official.json").read_text())
    data["embed_dim"] = TINY.embed_dim
    data["image"]["model_kwargs"] = {"depth": TINY.vit_depth, "embed_dim": TINY.vit_width,
                                     "num_heads": TINY.vit_heads, "img_size": TINY.img_size}
    data["dna"].update(hidden_size=TINY.dna_width, num_layers=TINY.dna_layers, num_heads=TINY.dna_heads,
                       intermediate_size=TINY.dna_ffn)
    data["text"].update(hidden_size=TINY.text_width, num_layers=TINY.text_layers, num_heads=TINY.text_heads,
                        intermediate_size=TINY.text_ffn)
    data["preprocess"].update(image_size=TINY.img_size, resize_size=TINY.img_size + TINY.img_size // 8)
    data["name"] = "clibd-official-tiny"
    return ModelConfig.from_dict(data)


def _photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (150, 110, 3), dtype=np.uint8))


@pytest.fixture()
def vocab(tmp_path):
    return write_vocab(tmp_path / "tokenizer" / "vocab.txt")


def _published(vocab, **kw) -> PublishedModel:
    n = len(vocab.read_text().split())
    return PublishedModel(TINY, n, **kw).randomize()


def _import(tmp_path, published: PublishedModel, vocab, **kw) -> Embedder:
    src = tmp_path / "best.pth"
    torch.save(published.state_dict(), src)
    out = tmp_path / "model.pt"
    import_official(src, out, text_tokenizer=vocab.parent, model_config=tiny_config(), **kw)
    return Embedder.from_checkpoint(out, device="cpu")


def _assert_same(ours: np.ndarray, theirs: list[torch.Tensor]) -> None:
    ref = torch.stack(theirs).detach().numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("old_prefixes,lora_path", [(False, False), (True, False), (False, True), (True, True)])
def test_imported_embeddings_equal_the_published_forward(tmp_path, vocab, old_prefixes, lora_path):
    published = _published(vocab, old_prefixes=old_prefixes, lora_path=lora_path)
    embedder = _import(tmp_path, published, vocab)
    with torch.no_grad():
        photos = [_photo(1), _photo(2)]
        _assert_same(embedder.encode_images(photos), [published.embed_image(p) for p in photos])
        _assert_same(embedder.encode_dna(BARCODES), [published.embed_dna(b) for b in BARCODES])
        texts = ["Diptera Cecidomyiidae not_classified not_classified", "Lepidoptera Noctuidae Agrotis Agrotis ipsilon"]
        _assert_same(embedder.encode_text(TAXA), [published.embed_text(t, vocab) for t in texts])
        # The adapters matter: without them the published forward gives other embeddings.
        published.without_adapters()
        plain = torch.stack([published.embed_image(p) for p in photos]).numpy()
        assert np.abs(embedder.encode_images(photos) - plain).max() > 1e-3
        if lora_path:
            plain_dna = torch.stack([published.embed_dna(b) for b in BARCODES]).numpy()
            assert np.abs(embedder.encode_dna(BARCODES) - plain_dna).max() > 1e-4


def test_image_and_dna_file_gives_a_model_without_text_tower(tmp_path, vocab):
    published = _published(vocab, modalities=("image", "dna"))
    src = tmp_path / "best.pth"
    torch.save(published.state_dict(), src)
    report = import_official(src, tmp_path / "m.pt", model_config=tiny_config())  # no tokenizer needed
    assert report.modalities == ("image", "dna")
    model = load_checkpoint(tmp_path / "m.pt")
    assert model.text is None and model.config.modalities == ("image", "dna")
    embedder = Embedder(model, device="cpu")
    with torch.no_grad():
        _assert_same(embedder.encode_dna(BARCODES[:1]), [published.embed_dna(BARCODES[0])])
    with pytest.raises(MissingModalityError, match="no taxonomy-text encoder"):
        embedder.encode_text(TAXA)


def test_image_only_import_from_a_three_tower_file(tmp_path, vocab):
    published = _published(vocab)
    src = tmp_path / "best.pth"
    torch.save(published.state_dict(), src)
    assert clibd_main(["import-official", str(src), "--out", str(tmp_path / "img.pt"), "--image-only",
                       "--model-config", _write_config(tmp_path)]) == 0
    model = load_checkpoint(tmp_path / "img.pt")
    assert model.modalities == ("image",) and model.dna is None and model.text_tokenizer is None
    with torch.no_grad():
        _assert_same(Embedder(model, device="cpu").encode_images([_photo(3)]), [published.embed_image(_photo(3))])
    extra = read_checkpoint(tmp_path / "img.pt")["extra"]
    assert extra["imported_from"] == "best.pth" and extra["published_modalities"] == ["image", "dna", "text"]


def _write_config(tmp_path) -> str:
    path = tmp_path / "official-tiny.json"
    path.write_text(json.dumps(tiny_config().to_dict()))
    return str(path)


def test_text_tower_without_tokenizer_is_refused_with_the_way_out(tmp_path, vocab):
    src = tmp_path / "best.pth"
    torch.save(_published(vocab).state_dict(), src)
    with pytest.raises(ValueError, match="--text-tokenizer DIR.*--modalities image dna"):
        import_official(src, tmp_path / "m.pt", model_config=tiny_config())
    other = write_vocab(tmp_path / "other" / "vocab.txt", size=200)
    with pytest.raises(ValueError, match="has 200 tokens but the file's text tower embeds"):
        import_official(src, tmp_path / "m.pt", model_config=tiny_config(), text_tokenizer=other.parent)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("damage,message", [
    ("drop", "missing: dna_encoder.base_dna_encoder.bert.encoder.layer.1.output.dense.weight"),
    ("extra", "unexpected keys outside the published towers: classifier.weight"),
    ("extra_in_tower", "unexpected: image_encoder.base_image_encoder.blocks.2.norm1.weight"),
    ("shape", "mis-shaped: language_encoder.proj.weight (32, 31) (expected (32, 32))"),
    ("adapter", "adapter keys missing: blocks.0.attn.qkv.linear_b_v.weight"),
])
def test_damaged_files_are_refused_naming_the_key(tmp_path, vocab, damage, message):
    state = _published(vocab).state_dict()
    if damage == "drop":
        del state["dna_encoder.base_dna_encoder.bert.encoder.layer.1.output.dense.weight"]
    elif damage == "extra":
        state["classifier.weight"] = torch.zeros(2, 2)
    elif damage == "extra_in_tower":
        state["image_encoder.base_image_encoder.blocks.2.norm1.weight"] = torch.zeros(TINY.vit_width)
    elif damage == "shape":
        state["language_encoder.proj.weight"] = torch.zeros(32, 31)
    else:
        del state["image_encoder.base_image_encoder.blocks.0.attn.qkv.linear_b_v.weight"]
    src = tmp_path / "best.pth"
    torch.save(state, src)
    with pytest.raises(PublishedKeyError) as err:
        import_official(src, tmp_path / "m.pt", text_tokenizer=vocab.parent, model_config=tiny_config())
    assert message in str(err.value)
    assert not (tmp_path / "m.pt").exists()


def test_published_config_must_match_the_file_and_name_a_supported_model(tmp_path, vocab):
    src = tmp_path / "best.pth"
    torch.save(_published(vocab, modalities=("image", "dna")).state_dict(), src)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("model_config:\n  image: {input_type: image, model: lora_vit}\n"
                   "  dna: {input_type: sequence, model: lora_barcode_bert}\n  output_dim: 768\n")
    import_official(src, tmp_path / "ok.pt", config_path=cfg, model_config=tiny_config())
    cfg.write_text("model_config:\n  image: {input_type: image, model: lora_vit}\n"
                   "  dna: {input_type: sequence}\n  language: {input_type: sequence, model: lora_bert}\n")
    with pytest.raises(PublishedKeyError, match="declares towers image, dna, text but the file holds image, dna"):
        import_official(src, tmp_path / "m.pt", config_path=cfg, model_config=tiny_config())
    cfg.write_text("model_config:\n  image: {input_type: feature, model: mlp}\n  dna: {input_type: sequence}\n")
    with pytest.raises(ValueError, match="precomputed features"):
        import_official(src, tmp_path / "m.pt", config_path=cfg, model_config=tiny_config())


def test_position_id_buffers_and_pooler_are_left_out(tmp_path, vocab):
    published = _published(vocab)
    state = published.state_dict()
    state["dna_encoder.base_dna_encoder.bert.embeddings.position_ids"] = torch.arange(512)[None]
    state["language_encoder.base_language_encoder.embeddings.position_ids"] = torch.arange(512)[None]
    assert "language_encoder.base_language_encoder.pooler.dense.weight" in state
    src = tmp_path / "best.pth"
    torch.save(state, src)
    report = import_official(src, tmp_path / "m.pt", text_tokenizer=vocab.parent, model_config=tiny_config())
    assert len(report.variant.unused) == 4 and report.variant.vit_adapters_merged == TINY.vit_depth


@pytest.mark.parametrize("old_prefixes,lora_path,modalities", [
    (False, False, ("image", "dna", "text")), (True, True, ("image", "dna", "text")),
    (False, False, ("image", "dna")), (True, False, ("image", "text"))])
def test_full_size_published_keys_fit_clibd_official_by_shape(tmp_path, old_prefixes, lora_path, modalities):
    with torch.device("meta"):
        published = PublishedModel(FULL, 30522, modalities=modalities, old_prefixes=old_prefixes,
                                   lora_path=lora_path)
    state = published.state_dict()
    assert tuple(state["image_encoder." + ("lora_vit" if old_prefixes else "base_image_encoder")
                       + ".pos_embed"].shape) == (1, 197, 768)
    mapped, variant = to_project_keys(state, modalities)
    assert variant.vit_adapters_merged == 12 and variant.modalities == modalities
    config = get_model_config("clibd-official")
    config.modalities = modalities
    tokenizer = (TextTokenizer.from_dir(write_vocab(tmp_path / "v" / "vocab.txt", size=30522).parent, 20)
                 if "text" in modalities else None)
    with torch.device("meta"):
        project = CLIBD(config, tokenizer)
    expected = {k: v.shape for k, v in project.state_dict().items()}
    check_fit(mapped, expected, variant)  # raises on any missing, unexpected or mis-shaped key
    assert set(mapped) == set(expected)
    params = sum(v.numel() for k, v in mapped.items() if "predictions.bias" not in k)
    if modalities == ("image", "dna", "text"):
        assert 195e6 < params < 210e6  # the published I+D+T file holds about 203M parameters
