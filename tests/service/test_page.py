"""The page for people, driven in a real headless Chromium against the running app (uvicorn over HTTP):
identify a specimen, see the answer, submit a bulk job and see it finish. Screenshots go to tests/artifacts/."""
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def server(settings, worker):
    """uvicorn serving the app on a free port in a thread."""
    import uvicorn

    from clibd.service.api.main import create_app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not srv.started and time.time() - t0 < 60:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def browser():
    """Headless Chromium through Selenium, or skip with the reason."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not CHROMIUM or not DRIVER:
        pytest.skip("Chromium and ChromeDriver are not installed (Debian: apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1500"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if condition(driver):
            return
        time.sleep(0.2)
    raise AssertionError("the page did not get there in time")


def test_identify_and_job_in_a_real_browser(server, browser, service_assets, tmp_path):
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    rec = next(r for r in service_assets["records"] if r.split == "test" and r.dna and r.image)
    browser.get(server + "/")
    _wait(browser, lambda d: "snapshot" in d.find_element(By.ID, "info").text)
    browser.find_element(By.ID, "images").send_keys(str(Path(rec.image).resolve()))
    browser.find_element(By.ID, "barcode").send_keys(rec.dna)
    browser.find_element(By.ID, "identify-button").click()
    _wait(browser, lambda d: d.find_element(By.ID, "answer").is_displayed())
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict.split(":")[0] in ("Confident", "Uncertain", "Novel")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ranks tbody tr")) == 4
    assert 10 <= len(browser.find_elements(By.CSS_SELECTOR, "#neighbors .neighbor")) <= 20  # top 10 per modality
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#neighbors img")
    assert thumbs
    _wait(browser, lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", t)
                                 for t in thumbs))  # every thumbnail loads (the browser fetches them after)
    browser.save_screenshot(str(ARTIFACTS / "page-identify.png"))

    browser.find_element(By.ID, "barcode").clear()
    browser.find_element(By.ID, "barcode").send_keys("ACGTXACGT")
    browser.find_element(By.ID, "identify-button").click()
    _wait(browser, lambda d: d.find_element(By.ID, "identify-error").is_displayed())
    assert "position 5" in browser.find_element(By.ID, "identify-error").text
    assert not browser.find_element(By.ID, "answer").is_displayed()  # no stale answer beside the error

    fasta = tmp_path / "batch.fasta"
    recs = [r for r in service_assets["records"] if r.split == "test" and r.dna][:12]
    fasta.write_text("".join(f">{r.id}\n{r.dna}\n" for r in recs) + ">broken\nACGT\n")
    browser.find_element(By.ID, "job-fasta").send_keys(str(fasta))
    browser.find_element(By.ID, "job-button").click()
    _wait(browser, lambda d: d.find_element(By.ID, "job-links").is_displayed(), timeout=120)
    status = browser.find_element(By.ID, "job-status").text
    assert "12 done, 1 failed of 13" in status
    assert browser.find_element(By.ID, "dl-csv").get_attribute("href").endswith("format=csv")
    browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.ID, "job-form"))
    browser.save_screenshot(str(ARTIFACTS / "page-job.png"))


def test_concurrent_requests_for_one_thumbnail_all_succeed(client, service_assets):
    from concurrent.futures import ThreadPoolExecutor
    ref = client.post("/v1/identify", files={"images": ("q.png", open(next(
        r.image for r in service_assets["records"] if r.image), "rb").read(), "image/png")}).json()
    ref_id = next(n["reference_id"] for n in ref["neighbors"] if n["has_image"])
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.get(f"/v1/references/{ref_id}/thumbnail?size=97").status_code,
                              range(16)))
    assert codes == [200] * 16
