"""Browser tests: Debian's chromium, driven through chromium-driver by selenium,
against the API served as ``slipstream dev`` serves it (tests.api.served).

One stack and one browser per module. Waits are WebDriverWait on conditions,
never sleeps. Every view is screenshotted; the pictures replace docs/images/
(which the docs show) only with ``SLIPSTREAM_SCREENSHOTS=docs`` (``make
screenshots``), so a test run never changes tracked files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.served import Served, serve

ROOT = Path(__file__).resolve().parents[2]
IMAGES = (
    ROOT / "docs" / "images"
    if os.environ.get("SLIPSTREAM_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "slipstream-ui-screenshots"
)
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("ui")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install, as .ci/run does)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: object, name: str) -> Path:
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / f"ui-{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path
