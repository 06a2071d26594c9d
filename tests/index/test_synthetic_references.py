"""A `clibd synth` demo says so everywhere: the notice travels through partition and index build into every
answer's provenance (the page shows it)."""
from clibd import create_model, save_checkpoint
from clibd.cli import main as clibd_main
from clibd.records import SYNTHETIC_NOTICE
from clibd.index.identifier import Identifier


def test_synthetic_records_give_an_index_whose_answers_say_synthetic(synth_dir, tmp_path):
    assert (synth_dir / "synth" / SYNTHETIC_NOTICE).exists()
    assert clibd_main(["partition", "--records", str(synth_dir / "synth" / "records.tsv"),
                       "--out", str(tmp_path / "part")]) == 0
    assert (tmp_path / "part" / SYNTHETIC_NOTICE).exists()
    ckpt = save_checkpoint(create_model("clibd-tiny"), tmp_path / "model.pt")
    assert clibd_main(["index", "build", "--checkpoint", str(ckpt), "--records", str(tmp_path / "part" / "records.tsv"),
                       "--out", str(tmp_path / "index"), "--modalities", "dna"]) == 0
    assert Identifier.load(ckpt, tmp_path / "index", "cpu").provenance()["synthetic_references"] is True
    # real records (no notice beside them) are not marked
    real = tmp_path / "real"
    real.mkdir()
    (real / "records.tsv").write_text((tmp_path / "part" / "records.tsv").read_text())
    assert clibd_main(["index", "build", "--checkpoint", str(ckpt), "--records", str(real / "records.tsv"),
                       "--out", str(tmp_path / "index2"), "--modalities", "dna"]) == 0
    assert Identifier.load(ckpt, tmp_path / "index2", "cpu").provenance()["synthetic_references"] is False
