"""The DAG list's banner for the files the last deploy refused: shown with their
count, opened by keyboard to each file's problems, gone after a good deploy;
checked with axe-core and screenshotted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.served import ACME_DAG, Served, deploy_tenant, tenant_project
from tests.deploy.projects import imports_restored
from tests.ui.test_browser import check_view, css, sign_in, text_of, wait

pytest.importorskip("selenium")
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[Path]:
    with imports_restored():
        yield tenant_project(tmp_path / "acme")


def test_the_banner_lists_the_refused_files_and_goes_after_a_good_deploy(
    browser: Any, served: Served, acme: Path
) -> None:
    (acme / "dags" / "acme_only.py").write_text(ACME_DAG.replace("schedule=", "schedule=(", 1))
    (acme / "dags" / "extra.py").write_text("import no_such_module_for_this_test\n")
    assert not deploy_tenant(acme, "acme").ok

    sign_in(browser, served, role="viewer", tenant="acme")
    summary = css(browser, "#import-errors summary")
    assert "2 DAG files failed to import in the last deploy" in summary.text
    assert "import error" in text_of(browser, "tr[data-dag=acme_only]")
    assert not browser.find_element(By.ID, "import-errors").get_attribute("open")
    summary.send_keys(Keys.ENTER)  # a <details> opens from the keyboard
    wait(browser, lambda d: d.find_element(By.ID, "import-errors").get_attribute("open"))
    opened = text_of(browser, "#import-errors")
    assert "dags/acme_only.py" in opened and "dags/extra.py" in opened
    assert "no_such_module_for_this_test" in opened and "acme_only.py:" in opened
    check_view(browser, "dags-import-errors")

    (acme / "dags" / "acme_only.py").write_text(ACME_DAG)
    (acme / "dags" / "extra.py").unlink()
    assert deploy_tenant(acme, "acme").ok
    wait(browser, lambda d: not d.find_elements(By.ID, "import-errors"))  # the next poll
    # The banner and the rows come from two answers of one poll: the rows may be
    # redrawn a moment after the banner goes.
    wait(browser, lambda d: "import error" not in _row_text(d, "acme_only"))


def _row_text(driver: Any, dag_id: str) -> str:
    rows = driver.find_elements(By.CSS_SELECTOR, f"tr[data-dag={dag_id}]")
    try:
        return rows[0].text if rows else "import error"
    except StaleElementReferenceException:  # redrawn while read: not settled yet
        return "import error"
