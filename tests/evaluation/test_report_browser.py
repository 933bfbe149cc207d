"""The report in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven
by selenium) opens report.html of the committed demo run and must find no console error, every
image present and decoded, and the metrics table with the run's numbers. A screenshot of the
whole page goes to test-artifacts/report_in_chromium.png.

Without Chromium the test is skipped, saying what to install, except where REQUIRE_BROWSER=1
(CI, whose .ci/run installs it): there it fails.
"""
import base64
import binascii
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from stages.common.evaluation.report import build_report, write_report
from stages.common.evaluation.run_results import RunFiles

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
# As the machine's own probe starts it: no sandbox as root, and nothing that reaches the network
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1200,900"]


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        reason = ("the browser check needs Debian's chromium and chromium-driver (.ci/run "
                  "installs them)")
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def _report_page(folder: Path) -> Path:
    page, _ = write_report(build_report(RunFiles(REPO / "metrics", REPO / "dvclive", None, None),
                                        title="Run report: demo"), folder)
    return page


def _check_page(browser, page: Path) -> dict:
    """What the browser found: console errors, images not decoded, the metrics table's rows."""
    browser.get(page.as_uri())
    # decode() settles once the whole image is decoded, and fails on a cut or corrupt one that
    # the header alone would still give a size
    images = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.images].map(i => i.decode().then("
        "() => [i.alt, i.naturalWidth > 0], () => [i.alt, false]))).then(done);")
    rows = browser.execute_script(
        "const table = [...document.querySelectorAll('h2')].find(h => h.textContent.startsWith("
        "'Test metrics')).nextElementSibling;"
        "return [...table.rows].map(r => [...r.cells].map(c => c.textContent));")
    errors = [entry["message"] for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE"]
    return {"images": images, "rows": rows, "errors": errors}


def _cut_short_images(page: Path) -> list[str]:
    """Images whose PNG data does not decode whole (Pillow, strict): a browser draws a PNG cut
    after its header as a partial picture and reports no error, so this is checked here."""
    broken = []
    for alt, data in re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]*)"',
                                page.read_text()):
        try:
            Image.open(io.BytesIO(base64.b64decode(data, validate=True))).load()
        except (OSError, ValueError, binascii.Error):
            broken.append(alt)
    return broken


def test_the_report_loads_in_chromium_with_every_image_and_the_run_s_numbers(browser, tmp_path):
    page = _report_page(tmp_path / "reports")
    found = _check_page(browser, page)
    assert found["errors"] == []
    assert len(found["images"]) == 7 and [alt for alt, ok in found["images"] if not ok] == []
    assert _cut_short_images(page) == []
    evaluation = json.loads((REPO / "metrics" / "evaluation.json").read_text())
    rows = {row[0]: row for row in found["rows"][1:]}
    assert rows["macro"][4] == f"{evaluation['f1_macro']:.3f}"
    assert rows["micro-F1"][4] == f"{evaluation['f1_micro']:.3f}"
    for entry in evaluation["per_class"]:
        assert rows[entry["class"]][1:5] == [f"{entry['threshold']:.2f}",
                                             f"{entry['precision']:.3f}",
                                             f"{entry['recall']:.3f}", f"{entry['f1']:.3f}"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, height)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "report_in_chromium.png"))


def _break_fidelity_chart(page: Path, how: str) -> None:
    text = page.read_text()
    start = text.index('alt="fidelity" src="data:image/png;base64,') + len(
        'alt="fidelity" src="data:image/png;base64,')
    end = text.index('"', start)
    data = text[start:end]
    broken = data[:200] if how == "cut" else data[:40] + "A" * 80 + data[120:]
    page.write_text(text[:start] + broken + text[end:])


def test_a_garbled_image_is_caught_by_the_browser(browser, tmp_path):
    """The browser check is not blind: a chart whose PNG header is overwritten is named."""
    page = _report_page(tmp_path / "reports")
    _break_fidelity_chart(page, "garbled")
    assert [alt for alt, ok in _check_page(browser, page)["images"] if not ok] == ["fidelity"]


def test_an_image_cut_short_is_caught(tmp_path):
    page = _report_page(tmp_path / "reports")
    _break_fidelity_chart(page, "cut")
    assert _cut_short_images(page) == ["fidelity"]
