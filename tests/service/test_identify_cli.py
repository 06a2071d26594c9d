"""`clibd identify`: files in, answers out, through the service's own code path (in-process and over HTTP)."""
import csv
import json

import pytest

from clibd.cli import main as clibd_main
from tests.service.test_page import server  # noqa: F401  (the live uvicorn fixture)


def _fasta(tmp_path, recs, extra=""):
    path = tmp_path / "plate.fasta"
    path.write_text("".join(f">{r.id}\n{r.dna}\n" for r in recs) + extra)
    return path


def _rows(path, delimiter=","):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def test_identify_fasta_to_csv_and_resume(service_assets, tmp_path):
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:6]
    fasta = _fasta(tmp_path, recs[:4], ">bad\nACGTXACGT\n")
    out = tmp_path / "answers.csv"
    base = ["identify", "--checkpoint", str(service_assets["checkpoint"]),
            "--index-root", str(service_assets["index"]), "--out", str(out)]
    assert clibd_main([*base, str(fasta)]) == 0
    rows = _rows(out)
    assert [r["id"] for r in rows] == [r.id for r in recs[:4]] + ["bad"]
    assert {"id", "status", "taxonRank", "scientificName", "order", "family", "genus", "species",
            "novel_at_rank", "top_species", "top_identity"} <= set(rows[0])
    assert all(r["top_species"] and float(r["top_identity"]) > 0 for r in rows[:4])
    assert rows[-1]["status"] == "failed" and "position 5" in rows[-1]["error"]
    for r in rows[:4]:
        assert r["status"] in ("confident", "uncertain", "novel")
        assert (r["species"] != "") == (r["status"] == "confident")
    with pytest.raises(SystemExit):  # an existing file is not overwritten without --resume
        clibd_main([*base, str(fasta)])
    more = _fasta(tmp_path, recs)
    assert clibd_main([*base, "--resume", str(more)]) == 0
    again = _rows(out)
    assert [r["id"] for r in again] == [r["id"] for r in rows] + [r.id for r in recs[4:]]


def test_identify_writes_darwin_core_and_json(service_assets, tmp_path):
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:3]
    fasta = _fasta(tmp_path, recs)
    base = ["identify", str(fasta), "--checkpoint", str(service_assets["checkpoint"]),
            "--index-root", str(service_assets["index"])]
    assert clibd_main([*base, "--out", str(tmp_path / "a.dwc.tsv")]) == 0
    dwc = _rows(tmp_path / "a.dwc.tsv", "\t")
    assert [r["occurrenceID"] for r in dwc] == [r.id for r in recs] and all(r["identifiedBy"] == "CLIBD" for r in dwc)
    assert clibd_main([*base, "--out", str(tmp_path / "a.json")]) == 0
    lines = [json.loads(x) for x in (tmp_path / "a.json").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r.id for r in recs]
    assert all(x["answer"]["neighbors"][0]["percent_identity"] is not None for x in lines)


def test_identify_against_a_running_server_gives_the_same_answers(service_assets, server, tmp_path):  # noqa: F811
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:3]
    bad = {"letter": "ACGTXACGT", "short": "ACGT" * 10, "all_n": "N" * 650, "rna": "ACGU" * 160}
    fasta = _fasta(tmp_path, recs, "".join(f">{k}\n{v}\n" for k, v in bad.items()))
    local, remote = tmp_path / "local.csv", tmp_path / "remote.csv"
    assert clibd_main(["identify", str(fasta), "--out", str(local), "--checkpoint",
                       str(service_assets["checkpoint"]), "--index-root", str(service_assets["index"])]) == 0
    assert clibd_main(["identify", str(fasta), "--out", str(remote), "--server", server]) == 0
    a, b = _rows(local), _rows(remote)
    keep = ("id", "status", "scientificName", "top_species", "top_identity")
    assert [{k: r[k] for k in keep} for r in a[:3]] == [{k: r[k] for k in keep} for r in b[:3]]
    for here, there in zip(a[3:], b[3:]):  # the same rules refuse the same barcodes, in the same words
        assert here["status"] == there["status"] == "failed"
        assert there["error"].startswith("HTTP 422") and here["error"] in there["error"], (here, there)
    assert [r["id"] for r in a[3:]] == list(bad)
    assert "only 0 determined bases" in a[5]["error"] and "RNA" in a[6]["error"]


def test_identify_reads_a_reversed_barcode_and_says_so(service_assets, tmp_path):
    from clibd.index.orientation import reverse_complement
    rec = next(r for r in service_assets["records"] if r.split == "test" and r.dna)
    fasta = tmp_path / "both.fasta"
    fasta.write_text(f">fwd\n{rec.dna}\n>rev\n{reverse_complement(rec.dna).lower()}\n")
    out = tmp_path / "both.csv"
    assert clibd_main(["identify", "--checkpoint", str(service_assets["checkpoint"]), "--index-root",
                       str(service_assets["index"]), "--out", str(out), str(fasta)]) == 0
    fwd, rev = _rows(out)
    assert (fwd["strand"], rev["strand"]) == ("plus", "minus")
    assert rev["top_species"] == fwd["top_species"] and rev["top_identity"] == fwd["top_identity"]
    assert "reverse complement" in rev["identificationRemarks"]


def _short_fragment_run(service_assets, tmp_path) -> list[str]:
    rec = next(r for r in service_assets["records"] if r.split == "test" and r.dna)
    fasta = tmp_path / "short.fasta"
    fasta.write_text(f">short\n{rec.dna[100:180]}\n")
    return ["identify", str(fasta), "--checkpoint", str(service_assets["checkpoint"]),
            "--index-root", str(service_assets["index"])]


def test_identify_in_process_takes_the_services_barcode_lengths(service_assets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    base = _short_fragment_run(service_assets, tmp_path)
    assert clibd_main([*base, "--out", str(tmp_path / "a.csv")]) == 0
    (row,) = _rows(tmp_path / "a.csv")
    assert row["status"] == "failed" and "80" in row["error"] and "100" in row["error"]
    assert clibd_main([*base, "--out", str(tmp_path / "b.csv"), "--min-barcode-length", "60"]) == 0
    monkeypatch.setenv("CLIBD_MIN_BARCODE_LENGTH", "60")  # the variable the service reads
    assert clibd_main([*base, "--out", str(tmp_path / "c.csv")]) == 0
    for name in ("b.csv", "c.csv"):
        (row,) = _rows(tmp_path / name)
        assert row["status"] != "failed" and not row["error"] and float(row["top_identity"]) > 90, row
    monkeypatch.setenv("CLIBD_MAX_BARCODE_LENGTH", "70")
    assert clibd_main([*base, "--out", str(tmp_path / "d.csv")]) == 0
    (row,) = _rows(tmp_path / "d.csv")
    assert row["status"] == "failed" and "70" in row["error"]
    monkeypatch.setenv("CLIBD_MAX_BARCODE_LENGTH", "seventy")  # refused with the variable named, nothing written
    with pytest.raises(SystemExit):
        clibd_main([*base, "--out", str(tmp_path / "e.csv")])
    assert "CLIBD_MAX_BARCODE_LENGTH='seventy'" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()


def test_identify_in_process_reads_the_services_env_file(service_assets, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLIBD_MIN_BARCODE_LENGTH", raising=False)
    monkeypatch.chdir(tmp_path)
    base = _short_fragment_run(service_assets, tmp_path)
    (tmp_path / ".env").write_text("# as the service reads it\nclibd_min_barcode_length=60\n")
    assert clibd_main([*base, "--out", str(tmp_path / "a.csv")]) == 0
    (row,) = _rows(tmp_path / "a.csv")
    assert row["status"] != "failed" and not row["error"], row
    monkeypatch.setenv("CLIBD_MIN_BARCODE_LENGTH", "100")  # the environment wins over the file, as for the service
    assert clibd_main([*base, "--out", str(tmp_path / "b.csv")]) == 0
    (row,) = _rows(tmp_path / "b.csv")
    assert row["status"] == "failed" and "100" in row["error"]
    monkeypatch.delenv("CLIBD_MIN_BARCODE_LENGTH")
    (tmp_path / ".env").write_text("CLIBD_MIN_BARCODE_LENGTH=sixty\n")
    with pytest.raises(SystemExit):
        clibd_main([*base, "--out", str(tmp_path / "c.csv")])
    assert "CLIBD_MIN_BARCODE_LENGTH='sixty' (from .env)" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()


def test_identify_csv_holds_no_spreadsheet_formula_and_resumes_past_it(service_assets, tmp_path):
    rec = next(r for r in service_assets["records"] if r.split == "test" and r.dna)
    evil = '=HYPERLINK("http://example.org","open")'
    fasta = tmp_path / "evil.fasta"
    fasta.write_text(f">{evil}\n{rec.dna}\n")
    out = tmp_path / "evil.csv"
    base = ["identify", "--checkpoint", str(service_assets["checkpoint"]), "--index-root",
            str(service_assets["index"]), "--out", str(out)]
    assert clibd_main([*base, str(fasta)]) == 0
    (row,) = _rows(out)
    assert row["id"] == "'" + evil and row["top_species"]
    assert clibd_main([*base, "--resume", str(fasta)]) == 0  # the id read back is the one given: nothing redone
    assert len(_rows(out)) == 1
