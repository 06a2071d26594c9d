"""The README's path for the published weights, on a file with the published names (tiny shapes):
`clibd import-official` -> `clibd index build` -> `clibd calibrate` -> `clibd identify`."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from clibd.cli import main as clibd_main
from clibd.readers import read_records
from tests.clibd.official_published import FULL, TINY, PublishedModel, write_vocab
from tests.clibd.test_official_import import tiny_config


def _readme_path(tmp_path, synth_dir, dims, model_config: list[str]) -> None:
    vocab = write_vocab(tmp_path / "bert-base-uncased" / "vocab.txt", size=30522 if dims is FULL else None)
    published = PublishedModel(dims, len(vocab.read_text().split())).randomize()
    torch.save(published.state_dict(), tmp_path / "best.pth")
    del published
    (tmp_path / "config.yaml").write_text(
        "model_config:\n  image: {input_type: image, model: lora_vit}\n  dna: {input_type: sequence, model: "
        f"lora_barcode_bert}}\n  language: {{input_type: sequence, model: lora_bert}}\n  output_dim: {dims.embed_dim}\n"
        "  disable_lora: true\n")
    model, idx = tmp_path / "model.pt", tmp_path / "index"
    records = synth_dir / "partition" / "records.tsv"
    assert clibd_main(["import-official", str(tmp_path / "best.pth"), "--out", str(model), "--config",
                       str(tmp_path / "config.yaml"), "--text-tokenizer", str(vocab.parent), *model_config]) == 0
    assert clibd_main(["index", "build", "--checkpoint", str(model), "--records", str(records),
                       "--splits", "train,key_unseen", "--out", str(idx)]) == 0
    assert clibd_main(["calibrate", "--checkpoint", str(model), "--index-root", str(idx),
                       "--records", str(records)]) == 0
    queries = [r for r in read_records(records) if r.split == "test" and r.dna][:5]
    fasta = tmp_path / "q.fasta"
    fasta.write_text("".join(f">{r.id}\n{r.dna}\n" for r in queries))
    out = tmp_path / "answers.csv"
    assert clibd_main(["identify", str(fasta), "--checkpoint", str(model), "--index-root", str(idx),
                       "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == [q.id for q in queries]
    # Barcodes of referenced species align at high identity whatever the random weights embed.
    assert sum(r["top_species"] == q.species for r, q in zip(rows, queries)) >= 4


def test_published_file_imports_indexes_calibrates_and_identifies(tmp_path, synth_dir):
    (tmp_path / "official-tiny.json").write_text(json.dumps(tiny_config().to_dict()))
    _readme_path(tmp_path, synth_dir, TINY, ["--model-config", str(tmp_path / "official-tiny.json")])


@pytest.mark.slow
def test_full_size_published_file_takes_the_readme_path(tmp_path, synth_dir):
    """The README's commands as written (default --model-config) on a full-size published-format file."""
    _readme_path(tmp_path, synth_dir, FULL, [])
