"""Bulk jobs end to end through a real Celery worker on the embedded filesystem queue."""
import csv
import io
import time
import zipfile
from pathlib import Path

GOOD = "ACGT" * 160


def _wait(client, job_id, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        p = client.get(f"/v1/jobs/{job_id}").json()
        if p["status"] == "done":
            return p
        time.sleep(0.2)
    raise AssertionError(f"job not done in {timeout}s: {p}")


def test_fasta_manifest_and_zip_job_with_per_item_errors(client, worker, service_assets):
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna and r.image][:6]
    fasta = "\r\n".join(f">{r.id} some description\r\n{r.dna[:300].lower()}\r\n{r.dna[300:].lower()}" for r in recs[:4])
    fasta += "\r\n>bad1\r\nACGTXXXX\r\n>short1\r\nACGTAC\r\n>empty1\r\n"
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for r in recs[4:]:
            z.write(r.image, f"photos/{Path(r.image).name}")
        z.writestr("photos/broken.jpg", b"not a jpeg")
    manifest = "id,dna,images\n" + "".join(f"{r.id},,photos/{Path(r.image).name}\n" for r in recs[4:])
    manifest += "m_broken,,photos/broken.jpg\n"
    r = client.post("/v1/jobs", files={"fasta": ("b.fasta", fasta.encode(), "text/plain"),
                                       "manifest": ("m.csv", manifest.encode(), "text/csv"),
                                       "images_zip": ("p.zip", zbuf.getvalue(), "application/zip")},
                    data={"top_k": "3"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["total"] == 4 + 3 + 2 + 1  # 4 good barcodes, 3 bad FASTA records, 2 photos, 1 broken photo
    p = _wait(client, job["id"])
    assert p["done"] == 6 and p["failed"] == 4 and p["done"] + p["failed"] == p["total"]
    res = client.get(job["results_url"]).json()
    by_id = {i["specimen_id"]: i for i in res["items"]}
    assert "position 5" in by_id["bad1"]["error"] and "has 6 nucleotides" in by_id["short1"]["error"]
    assert "no barcode and no image" in by_id["empty1"]["error"] and "not an image" in by_id["m_broken"]["error"]
    good = by_id[recs[0].id]["result"]
    assert good["neighbors"][0]["percent_identity"] is not None and len(good["neighbors"]) == 3
    assert list(by_id[recs[4].id]["result"]["per_modality"]) == ["image"]
    rows = list(csv.DictReader(io.StringIO(client.get(job["results_url"], params={"format": "csv"}).text)))
    assert len(rows) == 10 and {r["status"] for r in rows} == {"done", "failed"}
    dwc = client.get(job["results_url"], params={"format": "dwc"}).text.splitlines()
    assert dwc[0].startswith("occurrenceID\tbasisOfRecord\tscientificName") and len(dwc) == 11
    tsv = client.get(job["results_url"], params={"format": "tsv"}).text
    assert tsv.splitlines()[0].split("\t")[0] == "specimen_id"


def test_items_are_batched_on_the_encoder(client, worker, service_assets, settings):
    from service.runtime import worker_runtime
    ident = worker_runtime(worker.clibd_settings).require()  # the worker's own (cached) identifier
    calls = []
    encode = ident.encode_dna

    def counting(seqs):
        calls.append(len(seqs))
        return encode(seqs)
    ident.encode_dna = counting
    try:
        fasta = "".join(f">s{i}\n{GOOD[i:] + GOOD[:i]}\n" for i in range(40))
        job = client.post("/v1/jobs", files={"fasta": ("b.fasta", fasta.encode(), "text/plain")}).json()
        assert _wait(client, job["id"])["done"] == 40
    finally:
        ident.encode_dna = encode
    assert calls == [40]  # one chunk of 40 items -> one encoder call with all of them, not 40 calls
