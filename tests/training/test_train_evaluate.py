"""End to end on the tiny synthetic fixture: partition -> pretrain-dna -> train -> resume -> evaluate."""
import json

import pytest
import torch

from clibd import load_checkpoint
from clibd.cli import main
from clibd.training.dataset import ContrastiveDataset
from clibd.training.evaluate import eval_sets, evaluate
from clibd.training.pretrain_dna import mask_tokens
from clibd.readers import read_records
from clibd.dna_tokenizer import MASK_ID, UNK_ID, KmerTokenizer


def test_training_writes_checkpoints_resumes_and_evaluates(synth_dir, tmp_path):
    records = str(synth_dir / "partition" / "records.tsv")
    run = tmp_path / "run"
    args = ["train", "--records", records, "--out", str(run), "--epochs", "1", "--batch-size", "16",
            "--lr", "1e-3", "--species-positives"]
    assert main(args) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["val_mean_top1"] is not None
    assert {"image-dna", "image-text", "dna-text"} <= set(rows[0])
    first = torch.load(run / "train_state.pt", weights_only=False)
    # Resume: a second call with more epochs continues from the saved step, not from zero.
    assert main(args[:6] + ["2"] + args[7:]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["step"] == 2 * first["step"]
    model = load_checkpoint(run / "best.pt")
    assert model.config.name == "clibd-tiny"
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run / "last.pt"), "--records", records, "--out", str(out),
                 "--phase", "test", "--exclude-exact-dna"]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    for combo in ("dna->dna", "image->image", "image->dna", "image+dna->image+dna", "image->text"):
        assert combo in result["combos"], combo
        for rank in ("order", "family", "genus", "species"):
            assert 0.0 <= result["combos"][combo]["seen"][rank]["top1_micro"] <= 1.0
    assert "| image->dna | species |" in out.with_suffix(".md").read_text()


def test_dna_pretraining_masks_only_known_real_kmers_and_feeds_training(synth_dir, tmp_path):
    tok = KmerTokenizer()
    batch = tok(["ACGTR" + "ACGTA" * 30])
    ids, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], 0.5, torch.Generator().manual_seed(0))
    masked = ids == MASK_ID
    assert masked.any()
    assert not masked[batch["input_ids"] == UNK_ID].any()  # never the ambiguous k-mer or the padding
    assert (labels[masked] == batch["input_ids"][masked]).all() and (labels[~masked] == -100).all()
    out = tmp_path / "mlm"
    records = str(synth_dir / "partition" / "records.tsv")
    assert main(["pretrain-dna", "--records", records, "--out", str(out), "--max-steps", "3",
                 "--batch-size", "16"]) == 0
    assert (out / "dna_tower.pt").exists()
    run = tmp_path / "run"
    assert main(["train", "--records", records, "--out", str(run), "--max-steps", "2", "--batch-size", "16",
                 "--modalities", "dna,text", "--dna-weights", str(out / "dna_tower.pt")]) == 0
    pre = torch.load(out / "dna_tower.pt", weights_only=True)["state_dict"]
    trained = load_checkpoint(run / "last.pt").dna.mlm.state_dict()
    # Two steps at lr 5e-5 move weights by ~1e-4; a fresh init (std 0.02) would be far from the pretrained ones.
    key = "bert.embeddings.word_embeddings.weight"
    assert torch.allclose(pre[key], trained[key], atol=1e-3)


def test_evaluation_uses_all_keys_and_perfect_embeddings_score_perfectly(synth_dir):
    records = read_records(synth_dir / "partition" / "records.tsv")
    sets = eval_sets(records, "test")
    assert sets.seen and sets.unseen
    assert {r.split for r in sets.keys} == {"key_seen", "key_unseen"}

    class Oracle:
        """Isolates the search and scoring: one-hot species embeddings stand in for the model."""
        species = sorted({r.species for r in records})

        def _one_hot(self, recs):
            import numpy as np
            out = np.zeros((len(recs), len(self.species)), dtype=np.float32)
            for i, name in enumerate(recs):
                out[i, self.species.index(name)] = 1
            return out

        def encode_dna(self, seqs):
            return self._one_hot([by_dna[s] for s in seqs])

        def encode_images(self, paths):
            return self._one_hot([by_image[p] for p in paths])

        def encode_text(self, taxa):
            return self._one_hot([t["species"] for t in taxa])

    by_dna = {r.dna: r.species for r in records}
    by_image = {r.image: r.species for r in records}
    result = evaluate(Oracle(), records, "test")
    for combo in result["combos"].values():
        for part in ("seen", "unseen"):
            assert combo[part]["species"]["top1_micro"] == 1.0 and combo[part]["species"]["top1_macro"] == 1.0
        assert combo["seen"]["species"]["chance_top1_micro"] < 0.2


def test_dataset_skips_records_without_the_modalities(synth_dir):
    records = read_records(synth_dir / "partition" / "records.tsv")
    records[0].dna = "XXXX"
    records[1].image = None
    model = _tiny()
    ds = ContrastiveDataset(records, model, ("image", "dna"))
    assert len(ds) == len(records) - 2
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["dna_input_ids"].shape == (132,)


def _tiny():
    from clibd import create_model
    return create_model("clibd-tiny")


@pytest.mark.parametrize("cmd", ["synth", "partition", "train", "pretrain-dna", "evaluate", "models"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: clibd " + cmd in capsys.readouterr().out


def test_bad_input_gives_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--checkpoint", str(tmp_path / "empty.pt"), "--records", str(tmp_path / "x.tsv"),
              "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_unused_towers_and_mlm_head_are_frozen_but_tied_embeddings_train():
    from clibd.training.train import _freeze_unused

    model = _tiny()
    _freeze_unused(model, ("image", "dna"))
    assert not any(p.requires_grad for p in model.text.parameters())
    assert model.dna.bert.embeddings.word_embeddings.weight.requires_grad  # tied to the MLM decoder
    assert not model.dna.mlm.cls.predictions.transform.dense.weight.requires_grad
    assert all(p.requires_grad for p in model.image.parameters())


def test_species_pairing_draws_a_barcode_of_the_same_species(synth_dir):
    from clibd.records import Record

    records = read_records(synth_dir / "partition" / "records.tsv")
    photos = [Record(id=r.id, species=r.species, image=r.image) for r in records[:20]]
    pool = [Record(id=f"b{r.id}", species=r.species, dna=r.dna) for r in records]
    model = _tiny()
    ds = ContrastiveDataset(photos, model, ("image", "dna"), dna_pool=pool)
    assert len(ds) == 20
    by_species = {}
    for r in pool:
        by_species.setdefault(r.species, set()).add(tuple(model.dna_tokenizer([r.dna])["input_ids"][0].tolist()))
    for i in range(len(ds)):
        assert tuple(ds[i]["dna_input_ids"].tolist()) in by_species[photos[i].species]
    orphan = ContrastiveDataset([Record(id="x", species="nobody", image=photos[0].image)], model, ("image", "dna"),
                                dna_pool=pool)
    assert len(orphan) == 0
