"""Bulk jobs end to end through a real Celery worker on the embedded filesystem queue."""
import csv
import io
import re
import time
import zipfile
from pathlib import Path

from clibd.index.orientation import reverse_complement

GOOD = "ACGT" * 160


def _wait(client, job_id, timeout=120):  # an upper bound on waiting, not a speed check
    t0 = time.time()
    while time.time() - t0 < timeout:
        p = client.get(f"/v1/jobs/{job_id}").json()
        if p["status"] == "done":
            return p
        time.sleep(0.2)
    raise AssertionError(f"job not done in {timeout}s: {p}")


def test_fasta_manifest_and_zip_job_with_per_item_errors(client, worker, service_assets):
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna and r.image][:6]
    dnas = [r.dna if i != 1 else reverse_complement(r.dna) for i, r in enumerate(recs[:4])]  # one given reversed
    fasta = "\r\n".join(f">{r.id} some description\r\n{d[:300].lower()}\r\n{d[300:].lower()}"
                         for r, d in zip(recs, dnas))
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
    assert "no barcode and no image" in by_id["empty1"]["error"]
    assert "'broken.jpg' is not an image" in by_id["m_broken"]["error"]  # the user's file name, as uploaded
    good = by_id[recs[0].id]["result"]
    assert good["neighbors"][0]["percent_identity"] is not None and len(good["neighbors"]) == 3
    assert list(by_id[recs[4].id]["result"]["per_modality"]) == ["image"]
    rows = list(csv.DictReader(io.StringIO(client.get(job["results_url"], params={"format": "csv"}).text)))
    assert len(rows) == 10 and {r["status"] for r in rows} == {"done", "failed"}
    strand = {r["specimen_id"]: r["barcode_strand"] for r in rows}
    assert (strand[recs[0].id], strand[recs[1].id], strand[recs[4].id]) == ("plus", "minus", "")
    dwc = client.get(job["results_url"], params={"format": "dwc"}).text.splitlines()
    assert dwc[0].startswith("occurrenceID\tbasisOfRecord\tscientificName") and len(dwc) == 11
    dated = {r["occurrenceID"]: r["dateIdentified"]
             for r in csv.DictReader(io.StringIO("\n".join(dwc)), delimiter="\t")}
    failed = {r["specimen_id"] for r in rows if r["status"] == "failed"}
    assert failed and all((dated[i] == "") == (i in failed) for i in dated)  # identified items carry the moment
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d) for i, d in dated.items() if i not in failed)
    tsv = client.get(job["results_url"], params={"format": "tsv"}).text
    assert tsv.splitlines()[0].split("\t")[0] == "specimen_id"


def test_a_zip_without_manifest_gives_each_specimen_the_photos_named_for_it(client, worker, service_assets):
    """With no manifest, a photo is of the specimen its file is named for, wherever it sits in the ZIP; a FASTA
    record of the same id brings that specimen's barcode (one item, both modalities)."""
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna and r.image][:3]
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.write(recs[0].image, f"{recs[0].id}.png")
        z.write(recs[1].image, f"{recs[1].id}.png")
        z.write(recs[1].image, f"lateral/{recs[1].id}.png")  # a second photo of the same specimen
        z.write(recs[2].image, f"plate2/{recs[2].id}.png")
    fasta = f">{recs[0].id}\n{recs[0].dna}\n"
    r = client.post("/v1/jobs", files={"fasta": ("b.fasta", fasta.encode(), "text/plain"),
                                       "images_zip": ("p.zip", zbuf.getvalue(), "application/zip")})
    assert r.status_code == 202, r.text
    assert r.json()["total"] == 3
    p = _wait(client, r.json()["id"])
    assert p["done"] == 3 and p["failed"] == 0
    by_id = {i["specimen_id"]: i["result"] for i in client.get(r.json()["results_url"]).json()["items"]}
    assert set(by_id[recs[0].id]["per_modality"]) == {"image", "dna"}
    assert list(by_id[recs[1].id]["per_modality"]) == list(by_id[recs[2].id]["per_modality"]) == ["image"]


def test_items_are_batched_on_the_encoder(client, worker, service_assets, settings):
    from clibd.service.runtime import worker_runtime
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


def test_a_specimen_that_breaks_identification_fails_alone_after_max_attempts(settings):
    from clibd.index.identifier import Identifier
    from clibd.service.db import make_engine, migrate, session_factory
    from clibd.service.jobs import Upload, create_job, item_ids, process_chunk
    from clibd.service.models import JobItem
    from sqlalchemy import select
    migrate(settings.sqlalchemy_url)
    factory = session_factory(make_engine(settings.sqlalchemy_url))
    ident = Identifier.load(settings.checkpoint, settings.index_root, "cpu")
    poison = GOOD[5:] + GOOD[:5]
    real = ident.identify

    def identify(specimens, top_k, restrict_to=None):  # isolates the job logic: one specimen makes the core raise
        if any(s.dna == poison for s in specimens):
            raise RuntimeError("encoder exploded")
        return real(specimens, top_k, restrict_to)
    ident.identify = identify
    fasta = f">ok1\n{GOOD}\n>bad\n{poison}\n>ok2\n{GOOD[6:] + GOOD[:6]}\n"
    with factory() as session:
        job = create_job(session, settings.data_dir, Upload(fasta=fasta), settings.limits, {"top_k": 3})
        ids = item_ids(session, job.id)

    def states():
        with factory() as session:
            rows = session.scalars(select(JobItem).where(JobItem.job_id == job.id)).all()
            return {r.specimen_id: (r.status, r.attempts, r.error) for r in rows}
    assert process_chunk(ident, factory, job.id, ids, settings.limits, lease_s=300, max_attempts=3) == 3
    first = states()
    assert first["ok1"][0] == first["ok2"][0] == "done"  # the others are answered despite the poison
    assert first["bad"][:2] == ("pending", 1) and "encoder exploded" in first["bad"][2]
    for _ in range(2):
        assert process_chunk(ident, factory, job.id, ids, settings.limits, lease_s=300, max_attempts=3) == 1
    last = states()
    assert last["bad"][:2] == ("failed", 3) and "failed 3 times" in last["bad"][2]
    assert last["ok1"][1] == 1  # answered items are never taken again
    assert process_chunk(ident, factory, job.id, ids, settings.limits, lease_s=300, max_attempts=3) == 0
    with factory() as session:
        from clibd.service.models import Job
        assert session.get(Job, job.id).status == "done"


def test_items_claimed_by_a_dead_worker_are_taken_over_on_the_embedded_queue(service_assets, tmp_path):
    from celery.contrib.testing.worker import start_worker
    from fastapi.testclient import TestClient

    from clibd.service.api.main import create_app
    from clibd.service.celery_app import make_celery
    from clibd.service.db import make_engine, session_factory
    from clibd.service.jobs import claim, item_ids
    from clibd.service.models import JobItem
    from clibd.service.tasks import dispatch_recoverable
    from sqlalchemy import select
    from tests.service.conftest import make_settings
    settings = make_settings(service_assets, tmp_path / "data", item_lease_s=1.0)
    assert settings.embedded_broker
    fasta = "".join(f">s{i}\n{GOOD[i:] + GOOD[:i]}\n" for i in range(12))
    with TestClient(create_app(settings)) as client:
        job = client.post("/v1/jobs", files={"fasta": ("b.fasta", fasta.encode(), "text/plain")}).json()
        factory = session_factory(make_engine(settings.sqlalchemy_url))
        with factory() as session:  # a worker claims every item, then dies without a word
            dead = claim(session, job["id"], item_ids(session, job["id"]), settings.item_lease_s, 3)
        assert len(dead.items) == 12
        app = make_celery(settings)
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            time.sleep(1.5)  # the queued chunk finds every item claimed; the claims expire
            assert dispatch_recoverable(app, factory, settings) == 1
            progress = _wait(client, job["id"])
        assert progress["done"] == 12 and progress["failed"] == 0
        with factory() as session:
            items = session.scalars(select(JobItem).where(JobItem.job_id == job["id"])).all()
        assert all(i.attempts == 2 and i.claim_token is None for i in items)


def test_finished_jobs_past_the_retention_are_purged_with_their_files(client, worker, settings, capsys):
    from clibd.cli import main as clibd_main
    from tests.service.conftest import png_bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.png", png_bytes())
        z.writestr("b.png", png_bytes(color=(1, 2, 3)))
    manifest = f"id,dna,images\nok,{GOOD},a.png\nbad,ACGTNNNN,b.png\n"
    job = client.post("/v1/jobs", files={"manifest": ("m.csv", manifest.encode(), "text/csv"),
                                         "images_zip": ("z.zip", buf.getvalue(), "application/zip")}).json()
    progress = _wait(client, job["id"])
    assert progress["done"] == 1 and progress["failed"] == 1
    folder = settings.data_dir / "jobs" / job["id"]
    assert len([p for p in folder.rglob("*") if p.is_file()]) == 1  # the failed item's photo went at once
    args = ["jobs", "purge", "--data-dir", str(settings.data_dir), "--database-url", settings.sqlalchemy_url]
    assert clibd_main(args) == 0 and "purged 0" in capsys.readouterr().out  # within the retention: kept
    assert clibd_main(args + ["--older-than-days", "0.00000001"]) == 0
    assert "purged 1" in capsys.readouterr().out
    assert not folder.exists()
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_job_items_from_a_zip_alone_group_photos_by_specimen_and_keep_file_names(tmp_path):
    """How a ZIP without a manifest becomes items (no worker involved): every photo named for a specimen is
    one of its photos, kept under its own file name; a FASTA record of that id joins them."""
    from clibd.service.inputs import Limits
    from clibd.service.jobs import Upload, _items_from
    from tests.service.conftest import png_bytes

    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for name in ("S1.png", "S2.png", "S2.jpg", "plate/S3.png", "other/S3.png"):
            z.writestr(name, png_bytes())
    items = {i["specimen_id"]: i for i in _items_from(Upload(fasta=f">S1\n{GOOD}\n", zip_bytes=zbuf.getvalue()),
                                                      tmp_path, Limits())}
    assert sorted(items) == ["S1", "S2", "S3"] and items["S1"]["dna"] == GOOD
    assert [Path(p).name for p in items["S2"]["images"]] == ["S2.png", "S2.jpg"]
    assert [Path(p).name for p in items["S3"]["images"]] == ["S3.png", "S3.png"]
    assert len({*items["S3"]["images"]}) == 2 and all(Path(p).is_file() for i in items.values() for p in i["images"])


def test_results_stream_page_by_page_in_order_and_whole(client, monkeypatch):
    """Results are read a page at a time and sent as they are read (a 20,000-item job was built whole in memory):
    with pages of 3 items, every format still holds every item once, in order, under one header."""
    import json
    import uuid

    from clibd.service.api.routes import jobs as route
    from clibd.service.models import Job, JobItem, utcnow
    monkeypatch.setattr(route, "RESULTS_PAGE", 3)
    job_id, now = str(uuid.uuid4()), utcnow()
    with client.app.state.clibd.runtime.sessions() as s:
        s.add(Job(id=job_id, status="running", total=10, options={}, created_at=now, started_at=now))
        for i in range(10):  # positions out of insertion order, one failed, one still pending
            status = "failed" if i == 4 else "pending" if i == 9 else "done"
            s.add(JobItem(job_id=job_id, position=(i * 7) % 10, specimen_id=f"S{(i * 7) % 10}", dna=GOOD, images=[],
                          status=status, error="bad barcode" if status == "failed" else None,
                          result=None, finished_at=now if status != "pending" else None))
        s.commit()
    body = client.get(f"/v1/jobs/{job_id}/results").json()
    assert body["job"]["total"] == 10 and body["job"]["status"] == "running"
    assert [x["specimen_id"] for x in body["items"]] == [f"S{i}" for i in range(10)]
    for fmt, key, delimiter in (("csv", "specimen_id", ","), ("tsv", "specimen_id", "\t"),
                                ("dwc", "occurrenceID", "\t")):
        text = client.get(f"/v1/jobs/{job_id}/results", params={"format": fmt}).text
        assert text.count(key) == 1  # one header
        rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
        assert [r[key] for r in rows] == [f"S{i}" for i in range(10)]
    assert json.loads(client.get(f"/v1/jobs/{job_id}/results").text) == body


def test_a_windows_spreadsheet_manifest_is_read_and_the_answer_says_so(client, worker):
    manifest = f"id,dna\nMüller_1,{GOOD}\n".encode("cp1252")
    job = client.post("/v1/jobs", files={"manifest": ("m.csv", manifest, "text/csv")})
    assert job.status_code == 202 and "Windows-1252" in job.json()["note"]
    _wait(client, job.json()["id"])
    items = client.get(f"/v1/jobs/{job.json()['id']}/results").json()["items"]
    assert [i["specimen_id"] for i in items] == ["Müller_1"]
    plain = client.post("/v1/jobs", files={"manifest": ("m.csv", manifest.decode("cp1252").encode(), "text/csv")})
    assert plain.status_code == 202 and plain.json().get("note") is None
