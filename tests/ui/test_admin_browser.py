"""Admin editing, human-in-the-loop answers, and a run's deadlines and rendered
fields, in a real browser against the served API: each through the REST routes
a script would use, secrets never shown, the API's refusals shown beside the
form, controls offered only to the roles that may use them; every view checked
with axe-core and walked with the keyboard, and screenshotted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib import wiring
from tests.api.served import Served, deploy_dags, serve
from tests.api.test_hitl import _waiting
from tests.ui.conftest import screenshot
from tests.ui.test_browser import check_view, css, sign_in, text_of, wait

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.xdist_group("browser-admin")

DAGS = """
import datetime as dt

from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback


def late(**kwargs):
    pass


with DAG("approve_release", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    HITLOperator(
        task_id="ask", subject="Release {{ dag_run.conf.get('what', 'it') }}?",
        body="Check the staging dashboards first.", options=["Ship", "Hold"],
        params={"note": "none"},
    )

with DAG("approve_locked", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    HITLOperator(
        task_id="ask", subject="Only the release manager", options=["yes", "no"],
        assigned_users=[{"id": "release-manager", "name": "release-manager"}],
    )

with DAG(
    "report",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1),
    params={"region": "eu"},
    deadline=[
        DeadlineAlert(
            reference=DeadlineReference.FIXED_DATETIME(dt.datetime(2099, 1, 1)),
            interval=dt.timedelta(hours=-2),
            callback=SyncCallback(late),
        ),
    ],
):
    BashOperator(
        task_id="build",
        bash_command="test -n '{{ var.value.report_password }}' && echo {{ params.region }} ",
        env={"REGION": "{{ params.region }}"},
    )
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("ui-admin")) as running:
        deploy_dags(running, tmp_path_factory.mktemp("ui-admin-dags"), "admin_ui.py", DAGS)
        made = running.call(
            "POST", "/variables", json={"key": "report_password", "value": "pa55-word-77"}
        )
        assert made.status_code == 201, made.text
        yield running


def _fill(driver: Any, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)


def _saved(driver: Any, section: str) -> None:
    """Save the open form and wait until the list is read again (the form goes
    after that), so no old row is picked up."""
    driver.find_element(By.ID, f"{section}-save").click()
    wait(driver, lambda d: not d.find_elements(By.ID, f"{section}-form"))


def _row(driver: Any, table: str, item: str) -> Any:
    return css(driver, f"#admin-{table} tr[data-id='{item}']")


def test_an_op_creates_edits_and_deletes_a_connection_never_seeing_its_secrets(
    browser: Any, served: Served
) -> None:
    sign_in(browser, served, role="op")
    browser.get(f"{served.url}/ui/#/admin")
    css(browser, "#connections-new").click()
    _fill(
        browser,
        {
            "connections-f-connection_id": "warehouse",
            "connections-f-conn_type": "postgres",
            "connections-f-host": "db.internal",
            "connections-f-login": "etl",
            "connections-f-port": "5432",
            "connections-f-password": "hunter2-secret",
            "connections-f-extra": '{"region": "eu-west-1", "api_token": "tok-abc-123"}',
        },
    )
    _saved(browser, "connections")
    row = _row(browser, "connections", "warehouse")
    assert "db.internal" in row.text and "set" in row.text
    stored = wiring.connection_store().get("default", "warehouse")
    assert stored is not None and stored.password == "hunter2-secret" and stored.port == 5432

    row.find_element(By.XPATH, ".//button[.='Edit']").click()
    css(browser, "#connections-form")
    assert browser.find_element(By.ID, "connections-f-password").get_attribute("value") == ""
    assert browser.find_element(By.ID, "connections-f-extra").get_attribute("value") == ""
    assert "Set; never shown" in text_of(browser, "#connections-f-extra-hint")
    assert "Set; never shown" in text_of(browser, "#connections-f-password-hint")
    _fill(browser, {"connections-f-host": "db2.internal"})
    browser.execute_script("document.getElementById('connections-save').scrollIntoView(false)")
    check_view(browser, "admin-edit")
    for secret in ("hunter2-secret", "tok-abc-123"):
        assert secret not in browser.page_source
    _saved(browser, "connections")
    assert "db2.internal" in text_of(browser, "#admin-connections")
    stored = wiring.connection_store().get("default", "warehouse")
    assert stored is not None and stored.host == "db2.internal"
    assert stored.password == "hunter2-secret" and "tok-abc-123" in (stored.extra or "")

    # A refusal of the API is shown beside the form, and nothing changes.
    _row(browser, "connections", "warehouse").find_element(By.XPATH, ".//button[.='Edit']").click()
    _fill(browser, {"connections-f-port": "99999"})
    browser.find_element(By.ID, "connections-save").click()
    wait(browser, lambda d: "port" in text_of(d, "#connections-error"))
    assert "Not saved" in text_of(browser, "#connections-error")
    assert wiring.connection_store().get("default", "warehouse").port == 5432  # type: ignore[union-attr]
    browser.find_element(By.ID, "connections-cancel").click()
    # The list is read again before the form goes: wait for that, not the old rows.
    wait(browser, lambda d: not d.find_elements(By.ID, "connections-form"))

    delete = _row(browser, "connections", "warehouse").find_element(
        By.XPATH, ".//button[.='Delete']"
    )
    delete.click()
    css(browser, "button[data-confirm='warehouse']").click()
    wait(browser, lambda d: "warehouse" not in text_of(d, "#admin-connections"))
    assert wiring.connection_store().get("default", "warehouse") is None


def test_pools_and_variables_are_edited_in_place(browser: Any, served: Served) -> None:
    sign_in(browser, served, role="op")
    browser.get(f"{served.url}/ui/#/admin")
    css(browser, "#pools-new").click()
    _fill(browser, {"pools-f-name": "bad name!", "pools-f-slots": "3"})
    browser.find_element(By.ID, "pools-save").click()
    wait(browser, lambda d: "name" in text_of(d, "#pools-error"))
    assert served.call("GET", "/pools/bad%20name!").status_code == 404
    _fill(browser, {"pools-f-name": "gpu", "pools-f-description": "the two GPU hosts"})
    _saved(browser, "pools")
    assert "the two GPU hosts" in _row(browser, "pools", "gpu").text
    _row(browser, "pools", "gpu").find_element(By.XPATH, ".//button[.='Edit']").click()
    _fill(browser, {"pools-f-slots": "5"})
    _saved(browser, "pools")
    wait(browser, lambda d: served.call("GET", "/pools/gpu").json()["slots"] == 5)
    assert served.call("GET", "/pools/gpu").json()["description"] == "the two GPU hosts"
    # default_pool cannot be deleted, so it offers no Delete.
    assert (
        _row(browser, "pools", "default_pool").find_elements(By.XPATH, ".//button[.='Delete']")
        == []
    )

    css(browser, "#variables-new").click()
    _fill(browser, {"variables-f-key": "region", "variables-f-value": "eu-west-1"})
    _saved(browser, "variables")
    _row(browser, "variables", "region").find_element(By.XPATH, ".//button[.='Edit']").click()
    _fill(
        browser, {"variables-f-value": "us-east-1", "variables-f-description": "where reports run"}
    )
    _saved(browser, "variables")
    wait(browser, lambda d: "us-east-1" in text_of(d, "#admin-variables"))
    answer = served.call("GET", "/variables/region").json()
    assert answer["value"] == "us-east-1" and answer["description"] == "where reports run"
    _row(browser, "variables", "region").find_element(By.XPATH, ".//button[.='Delete']").click()
    css(browser, "button[data-confirm='region']").click()
    wait(browser, lambda d: served.call("GET", "/variables/region").status_code == 404)
    # An op manages no keys: that section is an admin's.
    assert browser.find_elements(By.ID, "admin-keys") == []


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(browser: Any, served: Served) -> None:
    sign_in(browser, served, role="admin")
    browser.get(f"{served.url}/ui/#/admin")
    css(browser, "#keys-new").click()
    _fill(browser, {"keys-f-name": "ci-bot"})
    browser.find_element(By.CSS_SELECTOR, "#keys-f-role option[value=user]").click()
    browser.find_element(By.ID, "keys-save").click()
    key = css(browser, "#new-key-text").text
    assert key.startswith("ssk_")
    screenshot(browser, "admin-new-key")
    who = served.call(
        "GET", "/slipstream/session", role=None, headers={"Authorization": f"Bearer {key}"}
    )
    assert who.status_code == 200 and who.json()["role"] == "user"
    browser.refresh()  # shown once: a new page does not show it again
    row = wait(
        browser,
        lambda d: next(
            (
                r
                for r in d.find_elements(By.CSS_SELECTOR, "#admin-keys tbody tr")
                if "ci-bot" in r.text
            ),
            None,
        ),
    )
    assert key not in browser.page_source
    row.find_element(By.XPATH, ".//button[.='Revoke']").click()
    css(browser, "#admin-keys button.danger").click()
    wait(
        browser,
        lambda d: (
            served.call(
                "GET", "/slipstream/session", role=None, headers={"Authorization": f"Bearer {key}"}
            ).status_code
            == 401
        ),
    )


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_roles_that_may_not_edit_get_no_editing_controls(
    browser: Any, served: Served, role: str
) -> None:
    sign_in(browser, served, role=role)
    browser.get(f"{served.url}/ui/#/admin")
    css(browser, "#admin-pools")
    assert browser.find_elements(By.ID, "pools-new") == []
    assert browser.find_elements(By.XPATH, "//button[.='Edit' or .='Delete']") == []
    assert "Actions" not in text_of(browser, "#admin-pools thead")


def test_answer_a_waiting_request_from_the_requests_page(browser: Any, served: Served) -> None:
    run_id = _waiting(served, "approve_release", {"what": "v2.3"})
    locked = _waiting(served, "approve_locked")
    sign_in(browser, served, role="user")
    browser.get(f"{served.url}/ui/#/hitl")
    row = css(browser, f"tr[data-hitl='approve_release/{run_id}/ask/-1']")
    assert "Release v2.3?" in row.text and "anyone" in row.text
    assert "release-manager" in text_of(browser, f"tr[data-hitl='approve_locked/{locked}/ask/-1']")

    # Assigned to someone else: the API's refusal is shown beside the form.
    css(browser, f"tr[data-hitl='approve_locked/{locked}/ask/-1'] button").click()
    css(browser, "#hitl-option-0").click()
    browser.find_element(By.ID, "hitl-submit").click()
    wait(browser, lambda d: "assigned_users" in text_of(d, "#hitl-error"))

    css(browser, f"tr[data-hitl='approve_release/{run_id}/ask/-1'] button").click()
    wait(browser, lambda d: "Check the staging dashboards" in text_of(d, "#hitl-form"))
    browser.find_element(By.ID, "hitl-submit").click()  # nothing chosen yet
    wait(browser, lambda d: "Choose an option" in text_of(d, "#hitl-error"))
    browser.find_element(By.ID, "hitl-option-0").click()
    _fill(browser, {"param-note": "dashboards green"})
    check_view(browser, "hitl")
    browser.find_element(By.ID, "hitl-submit").click()
    wait(browser, lambda d: "Answered ask" in text_of(d, "#hitl-status"))
    path = (
        f"/dags/approve_release/dagRuns/{quote(run_id, safe='')}/taskInstances/ask/-1/hitlDetails"
    )
    answer = served.call("GET", path).json()
    assert answer["chosen_options"] == ["Ship"]
    assert answer["params_input"] == {"note": "dashboards green"}
    wait(browser, lambda d: f"approve_release/{run_id}" not in d.page_source)
    assert served.stack.wait_for_run("approve_release", run_id).state.value == "success"


def test_a_viewer_sees_the_requests_but_no_answer_button(browser: Any, served: Served) -> None:
    _waiting(served, "approve_release")
    sign_in(browser, served, role="viewer")
    browser.get(f"{served.url}/ui/#/hitl")
    css(browser, "#hitl-table tr[data-hitl]")
    assert browser.find_elements(By.XPATH, "//button[contains(., 'Answer')]") == []


def test_the_run_shows_its_deadlines_and_rendered_fields(browser: Any, served: Served) -> None:
    run = served.stack.trigger("report", conf={"region": "apac"})
    assert served.stack.wait_for_run("report", run.run_id).state.value == "success"
    sign_in(browser, served, role="viewer")
    browser.get(f"{served.url}/ui/#/dags/report/runs/{quote(run.run_id, safe='')}?task=build")
    wait(browser, lambda d: "test -n '***' && echo apac" in text_of(d, "#rendered-fields"))
    assert "pa55-word-77" not in browser.page_source
    assert "REGION" in text_of(browser, "#rendered-fields")
    deadline = css(browser, "#deadline-table tr[data-deadline='0']")
    assert "2 h before" in deadline.text and "2098-12-31 22:00:00Z" in deadline.text
    wait(browser, lambda d: "Marking task as SUCCESS" in text_of(d, "#log"))
    wait(browser, lambda d: "apac" in text_of(d, "#xcom"))
    assert "pa55-word-77" not in browser.page_source
    check_view(browser, "run-deadlines")
