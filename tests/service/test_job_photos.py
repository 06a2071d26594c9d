"""A job item's photos are read as /v1/identify reads one specimen's: the same per-specimen pixel limit, the
same words (here with the limit lowered, so that small photos reach it). A photo two specimens share stays
readable for one when the other fails (a failed item's files are removed at once)."""
import io
import zipfile

import pytest

from tests.service.conftest import make_settings, png_bytes
from tests.service.test_jobs import _wait


@pytest.fixture
def settings(service_assets, tmp_path):
    """Embedded-default settings whose per-specimen pixel limit three 200x200 photos exceed and one does not."""
    return make_settings(service_assets, tmp_path / "data", max_request_pixels=100_000)


def test_a_job_item_over_the_specimen_pixel_limit_fails_as_identify_refuses_it_and_spares_a_shared_photo(
        client, worker):
    photo = png_bytes((200, 200))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for name in ("a.png", "b.png", "c.png"):
            z.writestr(name, photo)
    manifest = "id,dna,images\nthree,,a.png;b.png;c.png\none,,a.png\n"
    r = client.post("/v1/jobs", files={"manifest": ("m.csv", manifest.encode(), "text/csv"),
                                       "images_zip": ("p.zip", zbuf.getvalue(), "application/zip")})
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["id"])
    items = {i["specimen_id"]: i for i in client.get(r.json()["results_url"]).json()["items"]}
    assert job["done"] == 1 and job["failed"] == 1, items
    assert items["one"]["result"]["per_modality"] and not items["one"]["error"]  # a.png outlived "three"
    direct = client.post("/v1/identify", files=[("images", (n, photo, "image/png")) for n in ("a.png", "b.png",
                                                                                            "c.png")])
    assert direct.status_code == 413
    assert "hold 0.12 Mpx together, over the limit of 0.10 Mpx per specimen" in items["three"]["error"]
    assert items["three"]["error"] == direct.json()["detail"]
