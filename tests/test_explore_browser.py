"""The explorer in a real browser (headless Chromium through Selenium and
chromium-driver): the static page from the file system, its sampling controls against
transformer.generate.filter_logits, the served page with a typed prompt, and no
console errors. Skipped, with the reason, where Chromium or Selenium is missing.

ABLATE_EXPLORER_SHOTS=DIR also saves screenshots of the committed explorer there
(docs/explorer/ holds the README's)."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch

from ablations.explore.export import export
from ablations.explore.pack import unpack
from ablations.explore.serve import make_server
from explore_fixtures import make_results, read_data
from transformer.generate import filter_logits

ROOT = Path(__file__).resolve().parents[1]
# the view each grid's README screenshot shows
SHOTS = {"lm_extrapolation": "encoding", "attention_scaling": "attention",
         "positional_order": "tokens", "architectures": "cross"}
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError:                                   # pragma: no cover
    webdriver = None

pytestmark = pytest.mark.skipif(
    webdriver is None or CHROMIUM is None or DRIVER is None,
    reason="needs selenium, chromium and chromium-driver (apt-get install chromium "
           "chromium-driver); .ci/run installs them")


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    results = make_results(tmp_path_factory.mktemp("explore") / "results", monkeypatch)
    export(results, results / "explorer", ["tiny_lm", "tiny_translate"])
    yield results
    monkeypatch.undo()


def open_page(driver, url: str) -> float:
    driver.get(url)
    for _ in range(100):
        if driver.execute_script("return document.body.dataset.ready"):
            return driver.execute_script("return window.EXPLORER_READY_MS")
        time.sleep(0.05)
    raise AssertionError(f"{url} never became interactive")


def errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def shown(driver) -> dict[str, dict]:
    """Per variant column: the position and the probabilities the page shows."""
    out = {}
    for col in driver.find_elements(By.CSS_SELECTOR, ".column"):
        dist = col.find_element(By.CSS_SELECTOR, ".dist")
        out[col.get_attribute("data-variant")] = {
            "position": int(dist.get_attribute("data-position")),
            "kept": int(dist.get_attribute("data-kept")),
            "p": {int(b.get_attribute("data-token")): float(b.get_attribute("data-p"))
                  for b in dist.find_elements(By.CSS_SELECTOR, ".bar")}}
    return out


def check_against_filter_logits(driver, data, temperature, top_k, top_p):
    for key, seen in shown(driver).items():
        packed = data["prompts"][0]["views"][key]["logits"]
        logits = torch.tensor(unpack(packed)[seen["position"]], dtype=torch.float32)[None]
        want = filter_logits(logits, temperature, top_k, top_p).softmax(-1)[0].double()
        assert seen["kept"] == int((want > 0).sum())
        assert len(seen["p"]) == min(15, len(want))
        for token, p in seen["p"].items():
            assert abs(p - float(want[token])) <= 1e-6, (key, token, p, float(want[token]))


def test_static_page_sampling_equals_filter_logits(browser, site):
    ready_ms = open_page(browser, (site / "explorer" / "index.html").as_uri() + "?grid=tiny_lm")
    assert ready_ms < 2000
    data = read_data(site / "explorer" / "data" / "tiny_lm.js")
    # pick two variants: learned and alibi (rope, ticked by default, is unticked)
    for key, want in (("pos=learned", True), ("pos=rope", False)):
        box = browser.find_element(By.CSS_SELECTOR, f"#variants input[value='{key}']")
        if box.is_selected() != want:
            box.click()
    assert set(shown(browser)) == {"pos=alibi", "pos=learned"}
    check_against_filter_logits(browser, data, 1.0, None, None)
    # move the sliders with the keyboard as a user would: 1.0 -> 0.7, 1.0 -> 0.8
    browser.find_element(By.ID, "temperature").send_keys(*[Keys.ARROW_LEFT] * 6)
    browser.find_element(By.ID, "top-p").send_keys(*[Keys.ARROW_LEFT] * 4)
    assert browser.find_element(By.ID, "temperature-v").text == "0.7"
    assert browser.find_element(By.ID, "top-p-v").text == "0.8"
    check_against_filter_logits(browser, data, 0.7, None, 0.8)
    top_k = browser.find_element(By.ID, "top-k")
    top_k.send_keys(Keys.CONTROL, "a")
    top_k.send_keys("5")
    assert top_k.get_attribute("value") == "5"
    check_against_filter_logits(browser, data, 0.7, 5, 0.8)
    browser.find_element(By.ID, "sample").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, ".bar.sampled")) == 2
    for tab in ("attention", "encoding", "cross", "context"):
        browser.find_element(By.CSS_SELECTOR, f"nav button[data-tab='{tab}']").click()
    browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='cross']").click()
    Select(browser.find_element(By.ID, "grid")).select_by_value("tiny_translate")
    for _ in range(100):                          # the grid's data loads as a script
        if browser.find_elements(By.CSS_SELECTOR, "canvas.heatmap"):
            break
        time.sleep(0.05)
    assert [h.text for h in browser.find_elements(By.CSS_SELECTOR, ".column h3")] == \
        ["cross", "no_cross"]
    assert errors(browser) == []


def test_served_page_runs_a_typed_prompt(browser, site):
    server = make_server(site, ["tiny_lm"], "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        open_page(browser, f"http://127.0.0.1:{server.server_address[1]}/explorer/")
        box = browser.find_element(By.ID, "text")
        box.send_keys("it was too tired", Keys.ENTER)
        for _ in range(100):
            if "ms" in browser.find_element(By.ID, "status").text:
                break
            time.sleep(0.05)
        assert browser.find_element(By.ID, "status").text.endswith(" ms")
        tokens = browser.find_elements(By.CSS_SELECTOR, ".column .tokens")[0]
        assert len(tokens.find_elements(By.CSS_SELECTOR, ".tok")) == len("it was too tired")
        assert errors(browser) == []
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not (ROOT / "results" / "explorer" / "index.html").is_file(),
                    reason="no committed explorer (results/explorer/); `ablate explore` writes it")
def test_committed_explorer_loads_every_grid(browser):
    page = (ROOT / "results" / "explorer" / "index.html").as_uri()
    shots = os.environ.get("ABLATE_EXPLORER_SHOTS")
    index = open_page(browser, page) and browser.execute_script("return EXPLORER_INDEX.grids")
    for grid in index:
        open_page(browser, f"{page}?grid={grid['name']}")
        for tab in ("tokens", "attention", "encoding", "cross", "context"):
            browser.find_element(By.CSS_SELECTOR, f"nav button[data-tab='{tab}']").click()
            if shots and SHOTS.get(grid["name"]) == tab:
                Path(shots).mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(Path(shots) / f"{grid['name']}_{tab}.png"))
        assert errors(browser) == [], grid["name"]
