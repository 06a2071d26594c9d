"""`clibd identify`: files in, answers out, through the service's own code path (in-process and over HTTP)."""
import csv
import http.server
import json
import threading
from datetime import datetime, timezone
import urllib.error
import urllib.request

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
    today = datetime.now(timezone.utc).date()
    for r in dwc:  # ISO 8601 in UTC, to the second
        when = datetime.strptime(r["dateIdentified"], "%Y-%m-%dT%H:%M:%SZ")
        assert abs((when.date() - today).days) <= 1
    # a file an earlier version wrote (no dateIdentified column) is continued in its own columns, not refused
    old = tmp_path / "old.dwc.tsv"
    lines = (tmp_path / "a.dwc.tsv").read_text().splitlines()
    cut = lines[0].split("\t").index("dateIdentified")
    old.write_text("".join("\t".join(c for i, c in enumerate(line.split("\t")) if i != cut) + "\n"
                           for line in lines[:2]))
    assert clibd_main([*base, "--out", str(old), "--resume"]) == 0
    kept = _rows(old, "\t")
    assert [r["occurrenceID"] for r in kept] == [r.id for r in recs] and "dateIdentified" not in kept[0]
    assert all(r["scientificName"] == d["scientificName"] for r, d in zip(kept, dwc))
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


class _Flaky:
    """A stand-in server in front of the live one, isolating how `identify --server` meets server faults: it
    answers each POST with the next status of `script` (a number: that HTTP status; "pass": the live server's
    answer), then passes everything on."""

    def __init__(self, upstream: str, script: list):
        self.script, self.seen = list(script), 0
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                flaky.seen += 1
                step = flaky.script.pop(0) if flaky.script else "pass"
                if step == "pass":
                    req = urllib.request.Request(upstream + self.path, data=body, method="POST",
                                                 headers={"Content-Type": self.headers["Content-Type"]})
                    try:
                        with urllib.request.urlopen(req) as resp:
                            code, data = resp.status, resp.read()
                    except urllib.error.HTTPError as exc:
                        code, data = exc.code, exc.read()
                else:
                    code, data = step, json.dumps({"detail": f"scripted {step}"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_identify_via_server_retries_server_faults_and_stops_without_writing_failures(
        service_assets, server, tmp_path, capsys):  # noqa: F811
    from clibd.index.identify_files import RunStopped, identify_files, identify_via_server

    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:4]
    fasta = _fasta(tmp_path, recs, ">bad\nACGTXACGT\n")
    flaky = _Flaky(server, [503, 429, 502])  # a busy, then failing server: tried again, then answers
    out = tmp_path / "flaky.csv"
    counts = identify_files([str(fasta)], out, identify_via_server(flaky.url, 10, attempts=4, backoff_s=0.01))
    rows = _rows(out)
    assert [r["id"] for r in rows] == [r.id for r in recs] + ["bad"]
    assert all(r["status"] != "failed" for r in rows[:4]) and rows[4]["error"].startswith("HTTP 422")
    assert counts.get("failed") == 1 and flaky.seen == 5 + 3
    # a server that keeps failing: the run stops, the finished batch stays, no specimen is written as failed
    flaky.script = ["pass", "pass"] + [503] * 10
    out2 = tmp_path / "stopped.csv"
    with pytest.raises(RunStopped, match="did not answer after 3 tries.*2 answers of this run.*--resume"):
        identify_files([str(fasta)], out2, identify_via_server(flaky.url, 10, attempts=3, backoff_s=0.01),
                       batch_size=2)
    assert [r["id"] for r in _rows(out2)] == [r.id for r in recs[:2]]
    flaky.script = []  # the server is back: --resume finishes the rest
    identify_files([str(fasta)], out2, identify_via_server(flaky.url, 10, backoff_s=0.01), resume=True)
    assert [r["id"] for r in _rows(out2)] == [r["id"] for r in rows]
    # a fault every specimen would meet (a wrong path, a refused key) stops at once
    flaky.script = ["pass", 404]
    with pytest.raises(RunStopped, match="HTTP 404"):  # one request at a time: the second stops the run
        identify_files([str(fasta)], tmp_path / "wrong.csv", identify_via_server(flaky.url, 10, parallel=1))
    assert flaky.seen == 8 + (2 + 2 * 3) + 3 + 2  # first run, stopped run (two tried thrice), resume, wrong path
    flaky.close()
    # nothing listening: a one-line error, not a traceback
    with pytest.raises(SystemExit):
        clibd_main(["identify", str(fasta), "--out", str(tmp_path / "down.csv"), "--server", flaky.url,
                    "--retries", "0"])
    assert "did not answer after 1 try:" in capsys.readouterr().err


def test_identify_via_server_names_an_unreadable_photo_in_its_row(service_assets, server, tmp_path):  # noqa: F811
    rec = next(r for r in service_assets["records"] if r.split == "test" and r.dna)
    manifest = tmp_path / "plate.csv"
    manifest.write_text(f"id,dna,image\nok,{rec.dna},\nlost,,missing.jpg\n")
    out = tmp_path / "photos.csv"
    assert clibd_main(["identify", str(manifest), "--out", str(out), "--server", server]) == 0
    ok, lost = _rows(out)
    assert ok["status"] != "failed" and lost["status"] == "failed" and "missing.jpg" in lost["error"]


def test_identify_resume_redoes_a_row_cut_short_and_refuses_a_foreign_file(service_assets, tmp_path, capsys):
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:3]
    fasta = _fasta(tmp_path, recs)
    base = ["identify", str(fasta), "--checkpoint", str(service_assets["checkpoint"]),
            "--index-root", str(service_assets["index"])]
    for name in ("cut.csv", "cut.json"):
        out = tmp_path / name
        assert clibd_main([*base, "--out", str(out)]) == 0
        whole = out.read_text()
        last = whole.rstrip("\n").rsplit("\n", 1)[-1]
        out.write_text(whole[:len(whole) - len(last) // 2 - 1])  # a run killed in the middle of its last row
        assert clibd_main([*base, "--out", str(out), "--resume"]) == 0
        assert "cut short" in capsys.readouterr().out
        lines, before = out.read_text().splitlines(), whole.splitlines()
        # every line whole again, the ones before the cut untouched; the redone answer is the same answer (its
        # embedding similarities may differ in the last digits: it was embedded in a batch of one)
        assert len(lines) == len(before) and lines[:-1] == before[:-1], name
        if name.endswith(".csv"):
            keep = ("id", "status", "scientificName", "top_species", "top_identity")
            assert [{k: r[k] for k in keep} for r in _rows(out)] == \
                [{k: r[k] for k in keep} for r in csv.DictReader(before)]
        else:
            redone, first = json.loads(lines[-1]), json.loads(before[-1])
            assert redone["id"] == first["id"]
            assert redone["answer"]["identification"] == first["answer"]["identification"]
    for name, text in (("mine.csv", "specimen,notes\nA1,keep me"), ("mine.json", '[{"specimen": "A1"}]')):
        foreign = tmp_path / name  # not ours, and no newline at its end: refused, not a byte cut
        foreign.write_text(text)
        with pytest.raises(SystemExit):
            clibd_main([*base, "--out", str(foreign), "--resume"])
        assert "not" in capsys.readouterr().err and foreign.read_text() == text
    killed = tmp_path / "killed.csv"  # killed while writing its header: started afresh
    killed.write_text("id,status,taxon")
    assert clibd_main([*base, "--out", str(killed), "--resume"]) == 0
    assert [r["id"] for r in _rows(killed)] == [r.id for r in recs]


def test_identify_in_process_reads_photos_as_the_service_does(service_assets, tmp_path, monkeypatch):
    """One bad photo is its specimen's row, in the service's words; the run goes on. An oversized photo is
    refused from its header (a 1-bit PNG of 20000x20000 pixels in a small file), before any decoding."""
    import io
    from PIL import Image

    from clibd.photos import PhotoLimits, read_image

    rec = next(r for r in service_assets["records"] if r.split == "test" and r.dna and r.image)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    huge = io.BytesIO()
    Image.new("1", (20000, 20000)).save(huge, format="PNG")
    (tmp_path / "huge.png").write_bytes(huge.getvalue())
    manifest = tmp_path / "plate.csv"
    manifest.write_text(f"id,dna,image\nphoto,,{rec.image}\nbroken,,broken.jpg\nhuge,,huge.png\n"
                        f"lost,,missing.jpg\nboth,{rec.dna},{rec.image}\n")
    monkeypatch.chdir(tmp_path)  # no .env here
    out = tmp_path / "photos.csv"
    assert clibd_main(["identify", str(manifest), "--out", str(out), "--checkpoint",
                       str(service_assets["checkpoint"]), "--index-root", str(service_assets["index"])]) == 0
    rows = {r["id"]: r for r in _rows(out)}
    assert rows["photo"]["status"] != "failed" and rows["photo"]["top_species"] and not rows["photo"]["error"]
    assert rows["both"]["status"] != "failed" and float(rows["both"]["top_identity"]) > 90
    assert rows["broken"]["status"] == "failed" and "broken.jpg' is corrupt" in rows["broken"]["error"]
    assert rows["huge"]["status"] == "failed" and "400 Mpx, over the limit of 50 Mpx" in rows["huge"]["error"]
    assert rows["lost"]["status"] == "failed" and "missing.jpg" in rows["lost"]["error"]
    with pytest.raises(ValueError, match="over the limit") as refused:  # the same words as the service's 413
        read_image(huge.getvalue(), "huge.png", PhotoLimits())
    assert str(refused.value) in rows["huge"]["error"]
    monkeypatch.setenv("CLIBD_MAX_IMAGE_PIXELS", "100000000")  # the service's setting, read as it reads it
    again = tmp_path / "again.csv"
    assert clibd_main(["identify", str(manifest), "--out", str(again), "--checkpoint",
                       str(service_assets["checkpoint"]), "--index-root", str(service_assets["index"])]) == 0
    assert "400 Mpx, over the limit of 100 Mpx" in {r["id"]: r for r in _rows(again)}["huge"]["error"]


def test_a_photo_over_the_image_librarys_own_guard_names_the_limit_that_refused_it():
    """With the pixel limit raised above PIL's decompression-bomb guard, the guard refuses first: the message
    names its limit, not the (higher) one configured."""
    import io
    from PIL import Image

    from clibd.photos import PhotoLimits, read_image

    huge = io.BytesIO()
    Image.new("1", (20000, 20000)).save(huge, format="PNG")
    with pytest.raises(ValueError) as refused:
        read_image(huge.getvalue(), "huge.png", PhotoLimits(max_image_pixels=1_000_000_000))
    guard = 2 * Image.MAX_IMAGE_PIXELS / 1e6
    assert f"400 Mpx, over the image library's limit of {guard:.0f} Mpx" in str(refused.value)


def test_identify_restricted_to_a_taxon_in_process_and_over_http(service_assets, server, tmp_path, capsys):  # noqa: F811
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:4]
    family = recs[0].family
    fasta = _fasta(tmp_path, recs)
    local = ["identify", str(fasta), "--checkpoint", str(service_assets["checkpoint"]),
             "--index-root", str(service_assets["index"])]
    for where, base in (("local", local), ("remote", ["identify", str(fasta), "--server", server])):
        out = tmp_path / f"{where}.json"
        assert clibd_main([*base, "--out", str(out), "--restrict-to", family]) == 0
        answers = [json.loads(x)["answer"] for x in out.read_text().splitlines()]
        assert len(answers) == len(recs)
        assert all(n["family"] == family for a in answers for n in a["neighbors"]), where
        bad = tmp_path / f"{where}_bad.csv"  # a taxon no reference carries: the run stops, nothing written
        with pytest.raises(SystemExit):
            clibd_main([*base, "--out", str(bad), "--restrict-to", "Nonexistentidae"])
        assert "Nonexistentidae" in capsys.readouterr().err
        assert not bad.exists() or not _rows(bad)
    assert clibd_main([*local, "--out", str(tmp_path / "free.json")]) == 0  # unrestricted, other families show
    free = [json.loads(x)["answer"] for x in (tmp_path / "free.json").read_text().splitlines()]
    assert any(n["family"] != family for a in free for n in a["neighbors"])
    with pytest.raises(SystemExit):
        clibd_main([*local, "--out", str(tmp_path / "k.csv"), "--top-k", "0"])
    assert "--top-k must be 1 or more" in capsys.readouterr().err


def test_drop_partial_row_reads_back_from_the_end_over_rows_longer_than_its_block(tmp_path):
    from clibd.index.identify_files import drop_partial_row

    path = tmp_path / "out.csv"
    for text, kept in (("id,status\na,ok\nb,half-writ", "id,status\na,ok\n"), ("id,status\n", "id,status\n"),
                       ("no newline at all", ""), ("", "")):
        path.write_text(text)
        assert drop_partial_row(path, block=4) == len(text) - len(kept)
        assert path.read_text() == kept


def test_an_input_with_no_specimens_is_refused_before_anything_is_written(tmp_path):
    from clibd.index.identify_files import read_inputs
    empty, headers_only = tmp_path / "empty.fasta", tmp_path / "plate.csv"
    empty.write_text("")
    headers_only.write_text("id,dna\n")
    for path in (empty, headers_only):
        with pytest.raises(ValueError, match="no specimens in it"):
            read_inputs([str(path)])
    out = tmp_path / "out.csv"
    with pytest.raises(SystemExit) as stop:
        clibd_main(["identify", str(empty), "--server", "http://127.0.0.1:9", "--out", str(out)])
    assert stop.value.code == 2 and not out.exists()
