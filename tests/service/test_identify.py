"""POST /v1/identify through the real app: answers, options, provenance."""
from pathlib import Path



def _key_record(assets, split="test"):
    return next(r for r in assets["records"] if r.split == split and r.dna and r.image)


def test_identify_barcode_returns_ranks_neighbors_and_provenance(client, service_assets):
    rec = _key_record(service_assets)
    r = client.post("/v1/identify", data={"barcode": rec.dna, "top_k": "5"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["ranks"]) == {"order", "family", "genus", "species"}
    assert body["identification"]["status"] in ("confident", "uncertain", "novel")
    assert len(body["neighbors"]) == 5
    assert all(n["modality"] == "dna" and 0 <= n["percent_identity"] <= 100 for n in body["neighbors"])
    identities = [n["percent_identity"] for n in body["neighbors"]]  # barcode evidence: best alignment first
    assert identities == sorted(identities, reverse=True) and all(n["overlap"] >= 100 for n in body["neighbors"])
    assert body["per_modality"]["dna"]["top_identity"] == identities[0]
    prov = body["provenance"]
    assert prov["checkpoint_hash"] and prov["snapshot_id"] and prov["index_size"]["dna"] > 0
    assert prov["thresholds"]["barcode_bands"]["confident"]["species"] is not None
    assert list(body["per_modality"]) == ["dna"]


def test_identify_image_and_barcode_fuses_both(client, service_assets):
    rec = _key_record(service_assets)
    img = Path(rec.image).read_bytes()
    r = client.post("/v1/identify", data={"barcode": ">q1\n" + rec.dna.lower()},
                    files=[("images", ("a.png", img, "image/png")), ("images", ("b.png", img, "image/png"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["per_modality"]) == {"image", "dna"}
    assert {n["modality"] for n in body["neighbors"]} <= {"image", "dna"}
    only = client.post("/v1/identify", data={"barcode": rec.dna, "modalities": "image"},
                       files=[("images", ("a.png", img, "image/png"))]).json()
    assert list(only["per_modality"]) == ["image"]


def test_restrict_to_is_applied_inside_the_search(client, service_assets):
    rec = _key_record(service_assets)
    genus = next(r.genus for r in service_assets["records"] if r.split == "key_seen" and r.genus != rec.genus)
    body = client.post("/v1/identify", data={"barcode": rec.dna, "restrict_to": genus, "top_k": "3"}).json()
    assert body["neighbors"] and all(n["genus"] == genus for n in body["neighbors"])


def test_exact_reference_barcode_is_its_own_nearest_key(client, service_assets):
    key = next(r for r in service_assets["records"] if r.split == "key_seen" and r.dna)
    body = client.post("/v1/identify", data={"barcode": key.dna, "top_k": "1"}).json()
    top = body["neighbors"][0]
    assert top["percent_identity"] == 100.0 and top["similarity"] > 0.999


def test_info_health_ready_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    info = client.get("/v1/info").json()
    assert info["ready"] and info["jobs"]["broker"] == "embedded filesystem queue"
    client.post("/v1/identify", data={"barcode": "ACGT" * 40})
    metrics = client.get("/metrics").text
    assert "clibd_http_requests_total" in metrics and "clibd_index_keys" in metrics
    assert client.get("/docs").status_code == 200 and "/v1/identify" in client.get("/openapi.json").text
    page = client.get("/docs").text  # the API page works offline: its script and style are served from here
    assert "cdn." not in page and "/docs-assets/swagger-ui-bundle.js" in page
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200



def test_a_barcode_file_sent_as_the_barcode_field_is_read(client, service_assets):
    """What `curl -F barcode=@specimen.fasta` sends: the barcode as a file part."""
    dna = _key_record(service_assets).dna
    text = client.post("/v1/identify", data={"barcode": dna}).json()
    r = client.post("/v1/identify", files={"barcode": ("specimen.fasta", f">s1\n{dna}\n", "text/plain")})
    assert r.status_code == 200, r.text
    assert r.json()["neighbors"][0]["reference_id"] == text["neighbors"][0]["reference_id"]


def test_a_barcode_given_as_its_reverse_complement_gets_the_forward_answer(client, service_assets):
    from clibd.index.orientation import reverse_complement
    rec = _key_record(service_assets)
    forward = client.post("/v1/identify", data={"barcode": rec.dna, "top_k": "3"}).json()
    reverse = client.post("/v1/identify", data={"barcode": reverse_complement(rec.dna), "top_k": "3"}).json()
    assert forward["per_modality"]["dna"]["strand"] == "plus"
    assert reverse["per_modality"]["dna"]["strand"] == "minus"
    assert "reverse complement" in reverse["identification"]["identificationRemarks"]
    assert reverse["identification"] == {**forward["identification"], "identificationRemarks":
                                         reverse["identification"]["identificationRemarks"]}
    assert [n["reference_id"] for n in reverse["neighbors"]] == [n["reference_id"] for n in forward["neighbors"]]
