"""Admin references: API keys from the CLI, add -> searchable at once, list, delete, re-index by a worker."""
import shutil
import time
from pathlib import Path

import pytest

from clibd.cli import main as clibd_main
from tests.service.conftest import make_settings


@pytest.fixture
def settings(service_assets, tmp_path):
    """Like conftest's, over a copy of the index: re-indexing here writes snapshots other tests must not see
    (they would hold a reference this module deletes, files and all)."""
    index = tmp_path / "index"
    shutil.copytree(service_assets["index"], index)
    return make_settings({**service_assets, "index": index}, tmp_path / "data")


def _key(settings, capsys):
    assert clibd_main(["apikey", "create", "--name", "curator", "--database-url", settings.sqlalchemy_url]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("clibd_")
    return {"X-API-Key": key}


def test_apikey_create_refuses_an_unknown_scope_and_a_name_the_database_cannot_hold(settings, capsys):
    base = ["apikey", "create", "--database-url", settings.sqlalchemy_url]
    for extra, words in ((["--name", "curator", "--scopes", "admn"], "unknown scope 'admn'; scopes are admin"),
                         (["--name", "c" * 129], "give 1 to 128 printable characters"),
                         (["--name", "  "], "give 1 to 128 printable characters")):
        with pytest.raises(SystemExit) as stop:
            clibd_main([*base, *extra])
        assert stop.value.code == 2 and words in capsys.readouterr().err
    from sqlalchemy import create_engine, func, select
    from clibd.service.models import ApiKey
    engine = create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ApiKey)) == 0
    engine.dispose()
    assert clibd_main([*base, "--name", "curator", "--scopes", " admin"]) == 0


def test_add_list_delete_and_reindex(client, worker, settings, service_assets, capsys):
    hdr = _key(settings, capsys)
    new = next(r for r in service_assets["records"] if r.split == "key_unseen" and r.dna and r.image)
    before = client.post("/v1/identify", data={"barcode": new.dna, "top_k": "1"}).json()
    assert before["neighbors"][0]["reference_id"] != new.id
    r = client.post("/v1/admin/references", headers=hdr,
                    data={"id": new.id, "order": new.order, "family": new.family, "genus": new.genus,
                          "species": new.species, "bin": "BOLD:TEST1", "dna": new.dna},
                    files=[("images", ("a.png", Path(new.image).read_bytes(), "image/png"))])
    assert r.status_code == 201, r.text
    assert r.json()["searchable"] is True and r.json()["images"] == 1
    stored = [p for p in (settings.data_dir / "references").rglob("*") if p.is_file()]
    assert len(stored) == 1 and new.id not in str(stored[0])  # the server names the stored file
    after = client.post("/v1/identify", data={"barcode": new.dna, "top_k": "1"}).json()
    assert after["neighbors"][0]["reference_id"] == new.id and after["neighbors"][0]["percent_identity"] == 100.0
    assert client.post("/v1/identify", data={"barcode": new.dna, "restrict_to": new.species}).status_code == 200
    dup = client.post("/v1/admin/references", headers=hdr, data={"id": new.id, "species": "x y", "dna": new.dna})
    assert dup.status_code == 409
    listed = client.get("/v1/admin/references", headers=hdr, params={"taxon": new.genus}).json()
    assert [x["id"] for x in listed] == [new.id]

    size_before = client.get("/v1/info").json()["provenance"]["index_size"]["dna"]
    task = client.post("/v1/admin/reindex", headers=hdr)
    assert task.status_code == 202
    snap0 = before["provenance"]["snapshot_id"]
    t0 = time.time()
    while client.get("/v1/info").json()["provenance"]["snapshot_id"] == snap0 and time.time() - t0 < 60:
        time.sleep(0.3)
    info = client.get("/v1/info").json()["provenance"]
    assert info["snapshot_id"] != snap0 and info["index_size"]["dna"] == size_before
    assert client.get("/v1/admin/references", headers=hdr).json()[0]["snapshot_id"] == info["snapshot_id"]
    still = client.post("/v1/identify", data={"barcode": new.dna, "top_k": "1"}).json()
    assert still["neighbors"][0]["reference_id"] == new.id  # folded into the main index now

    gone = client.delete(f"/v1/admin/references/{new.id}", headers=hdr)
    assert gone.status_code == 200 and gone.json()["searchable"] is False
    again = client.post("/v1/identify", data={"barcode": new.dna, "top_k": "1"}).json()
    assert again["neighbors"][0]["reference_id"] != new.id
    assert client.delete(f"/v1/admin/references/{new.id}", headers=hdr).status_code == 404
    assert not [p for p in (settings.data_dir / "references").rglob("*") if p.is_file()]  # DELETE removed it
    snapshot_key = before["neighbors"][0]["reference_id"]
    assert client.delete(f"/v1/admin/references/{snapshot_key}", headers=hdr).status_code == 200


def test_bad_reference_input(client, settings, capsys):
    hdr = _key(settings, capsys)
    r = client.post("/v1/admin/references", headers=hdr, data={"id": "R1", "dna": "ACGT" * 100})
    assert r.status_code == 422 and "taxonomy" in r.json()["detail"]
    r = client.post("/v1/admin/references", headers=hdr, data={"id": "R1", "species": "A b"})
    assert r.status_code == 422 and "barcode" in r.json()["detail"]
    r = client.post("/v1/admin/references", headers=hdr, data={"id": "R1", "species": "A b", "dna": "ACGU" * 100})
    assert r.status_code == 422 and "RNA" in r.json()["detail"]
    # what the database could not hold is refused before anything is stored (PostgreSQL refused it with a 500)
    for field, value, words in (("genus", "G" * 129, "genus: String should have at most 128"),
                                ("species", "A " + "b" * 255, "species: String should have at most 256"),
                                ("bin", "BOLD:" + "A" * 60, "bin: String should have at most 64"),
                                ("genus", "Ae\x00des", "genus 'Ae\\x00des' holds a control character (code 0)")):
        r = client.post("/v1/admin/references", headers=hdr,
                        data={"id": "R1", "order": "O", "species": "A b", "dna": "ACGT" * 100, field: value})
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.get("/v1/admin/references", headers=hdr).json() == []
    assert not (settings.data_dir / "references").exists() or not any((settings.data_dir / "references").iterdir())


def test_a_second_add_of_one_id_racing_the_first_is_a_409_and_leaves_the_first_ones_photos(
        client, settings, service_assets, capsys):
    from fastapi import HTTPException
    from PIL import Image
    from clibd.service.api.routes.admin import _store
    from clibd.service.models import ReferenceRecord
    hdr = _key(settings, capsys)
    known = next(r for r in service_assets["records"] if r.split == "key_unseen" and r.dna and r.image)
    lineage = {"order": known.order, "family": known.family, "genus": known.genus, "species": known.species}
    r = client.post("/v1/admin/references", headers=hdr, data={"id": "R7", "dna": known.dna, **lineage},
                    files=[("images", ("a.png", Path(known.image).read_bytes(), "image/png"))])
    assert r.status_code == 201, r.text
    stored = sorted(p for p in (settings.data_dir / "references").rglob("*") if p.is_file())
    before = [p.read_bytes() for p in stored]
    # the second request passed the id check before the first committed (a client's retry): _store alone
    state = client.app.state.clibd
    with state.runtime.sessions() as session:
        with pytest.raises(HTTPException) as refused:
            _store(state, session, ReferenceRecord(id="R7", **lineage, dna=known.dna, status="active"),
                   [Image.new("RGB", (32, 32), (255, 0, 0))])
    assert refused.value.status_code == 409
    assert sorted(p for p in (settings.data_dir / "references").rglob("*") if p.is_file()) == stored
    assert [p.read_bytes() for p in stored] == before
    assert [x["id"] for x in client.get("/v1/admin/references", headers=hdr).json()] == ["R7"]


def test_a_reference_added_while_a_reindex_runs_is_not_marked_as_folded_into_it(
        client, settings, service_assets, capsys, monkeypatch):
    from clibd.service.models import ReferenceRecord
    hdr = _key(settings, capsys)
    new = [r for r in service_assets["records"] if r.split == "key_unseen" and r.dna][:2]
    lineage = [{"order": r.order, "family": r.family, "genus": r.genus, "species": r.species} for r in new]
    assert client.post("/v1/admin/references", headers=hdr,
                       data={"id": "EARLY", "dna": new[0].dna, **lineage[0]}).status_code == 201
    runtime = client.app.state.clibd.runtime
    searcher, compact = runtime.identifier.searcher, runtime.identifier.searcher.compact

    def compact_while_a_curator_adds(root):  # the API commits a reference while the worker compacts
        snapshot = compact(root)
        with runtime.sessions() as session:
            session.add(ReferenceRecord(id="LATE", **lineage[1], dna=new[1].dna, images=[], status="active"))
            session.commit()
        return snapshot
    monkeypatch.setattr(searcher, "compact", compact_while_a_curator_adds)
    first = runtime.sync.reindex()
    monkeypatch.undo()
    listed = {r["id"]: r["snapshot_id"] for r in client.get("/v1/admin/references", headers=hdr).json()}
    assert first["references_folded"] == 1 and listed == {"EARLY": first["snapshot_id"], "LATE": None}
    second = runtime.sync.reindex()  # the next one folds it
    listed = {r["id"]: r["snapshot_id"] for r in client.get("/v1/admin/references", headers=hdr).json()}
    assert second["references_folded"] == 1 and listed == {"EARLY": first["snapshot_id"], "LATE": second["snapshot_id"]}


def test_a_reference_contradicting_the_references_lineage_is_refused_and_nothing_changes(
        client, settings, service_assets, capsys):
    hdr = _key(settings, capsys)
    known = next(r for r in service_assets["records"] if r.split == "key_seen" and r.dna and r.species)
    other_family = next(r.family for r in service_assets["records"] if r.family and r.family != known.family)
    size = client.get("/v1/info").json()["provenance"]["index_size"]["dna"]
    for given, words in (({"family": other_family, "genus": known.genus, "species": known.genus + " sp. new"},
                          f"genus {known.genus!r} is order {known.order}, family {known.family}"),
                         ({"genus": known.genus, "species": known.species.upper()},
                          f"species {known.species.upper()!r} is ")):
        r = client.post("/v1/admin/references", headers=hdr, data={"id": "R9", "dna": known.dna, **given})
        assert r.status_code == 409 and r.json()["detail"].startswith(words), r.text
    assert client.get("/v1/admin/references", headers=hdr).json() == []
    assert client.get("/v1/info").json()["provenance"]["index_size"]["dna"] == size
    ok = client.post("/v1/admin/references", headers=hdr,
                     data={"id": "R9", "dna": known.dna, "order": known.order, "family": known.family,
                           "genus": known.genus, "species": known.genus + " sp. new"})
    assert ok.status_code == 201, ok.text
    new_species = {"barcode": known.dna, "restrict_to": known.genus + " sp. new"}
    assert client.post("/v1/identify", data=new_species).status_code == 200  # the added key's taxon is known


def test_deleting_a_taxons_last_reference_hides_its_name_and_adding_it_again_restores_one(
        client, settings, service_assets, capsys):
    hdr = _key(settings, capsys)
    known = next(r for r in service_assets["records"] if r.split == "key_seen" and r.dna and r.species)
    lineage = {"order": known.order, "family": known.family, "genus": known.genus, "species": known.genus + " zz"}

    def sizes():
        return client.get("/v1/info").json()["provenance"]["index_size"]

    before = sizes()
    assert client.post("/v1/admin/references", headers=hdr, data={"id": "T1", "dna": known.dna, **lineage}
                       ).status_code == 201
    assert sizes()["text"] == before["text"] + 1  # the new taxon's name is a key
    assert client.delete("/v1/admin/references/T1", headers=hdr).status_code == 200
    assert sizes() == before  # its last specimen gone, the name goes too
    restricted = client.post("/v1/identify", data={"barcode": known.dna, "restrict_to": lineage["species"]})
    assert restricted.status_code == 422 and "restrict_to" in restricted.json()["detail"]
    assert client.post("/v1/admin/references", headers=hdr, data={"id": "T2", "dna": known.dna, **lineage}
                       ).status_code == 201
    assert sizes()["text"] == before["text"] + 1  # back once, not twice
    # a name other references still carry stays when one of them goes
    other = client.post("/v1/admin/references", headers=hdr, data={"id": "T3", "dna": known.dna, **lineage})
    assert other.status_code == 201 and sizes()["text"] == before["text"] + 1
    assert client.delete("/v1/admin/references/T3", headers=hdr).status_code == 200
    assert sizes()["text"] == before["text"] + 1


def test_reference_ids_cannot_name_paths_and_list_bounds_are_checked(client, settings, capsys):
    hdr = _key(settings, capsys)
    for bad in ("..", ".", "a/b", "a\\b", "tab\there", "taxon:x"):
        r = client.post("/v1/admin/references", headers=hdr, data={"id": bad, "species": "A b", "dna": "ACGT" * 160})
        assert r.status_code == 422 and "invalid reference id" in r.json()["detail"], (bad, r.text)
    assert not (settings.data_dir / "references").exists() or not any((settings.data_dir / "references").iterdir())
    assert client.get("/v1/admin/references", headers=hdr).json() == []
    for params in ({"offset": "9" * 20}, {"offset": "-1"}, {"limit": "0"}, {"limit": "1001"}):
        assert client.get("/v1/admin/references", headers=hdr, params=params).status_code == 422


def test_background_refresher_picks_up_references_written_elsewhere(client, settings, service_assets):
    """Another process (a second API replica, a worker) adds a reference to the database: the served index
    holds it within a refresh interval, and no request has to load anything for that to happen."""
    from clibd.service.models import ReferenceRecord

    state = client.app.state.clibd
    new = next(r for r in service_assets["records"] if r.split == "key_unseen" and r.dna)
    assert not state.runtime.identifier.searcher.has_key(new.id)
    with state.runtime.sessions() as session:
        session.add(ReferenceRecord(id=new.id, order=new.order, family=new.family, genus=new.genus,
                                    species=new.species, dna=new.dna, images=[], status="active"))
        session.commit()
    deadline = time.monotonic() + 10 * settings.refresh_interval_s
    while not state.runtime.identifier.searcher.has_key(new.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.runtime.identifier.searcher.has_key(new.id)
    answer = client.post("/v1/identify", data={"barcode": new.dna}).json()
    assert answer["neighbors"][0]["reference_id"] == new.id
