"""The web UI in a real browser against the served API: sign in with the link's
one-time code, the DAG list, unpause, trigger from the params form, the grid
reaching success, a task's log, clearing a task and seeing it run again, what
a viewer may not do, and that another tenant's DAG never shows. Every view is
checked with axe-core and walked with the keyboard, and screenshotted."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib.api import deps
from tests.api.served import Served
from tests.ui.conftest import screenshot

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# The tests share one served stack and reuse the run the trigger test starts:
# one xdist worker, in file order (``_latest_run`` copes if they are split).
pytestmark = pytest.mark.xdist_group("browser")

WAIT = 60.0
AXE = os.path.join(
    os.path.dirname(__import__("axe_selenium_python").__file__),
    "node_modules",
    "axe-core",
    "axe.min.js",
)


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def css(driver: Any, selector: str) -> Any:
    return wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector))


def text_of(driver: Any, selector: str) -> str:
    # One script call: a view that redraws meanwhile cannot leave a stale element.
    return str(
        driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector
        )
    )


def sign_in(driver: Any, served: Served, role: str = "user", tenant: str = "default") -> None:
    code = deps.signin_codes().create(tenant=tenant, role=role, now=dt.datetime.now(dt.UTC))
    driver.get("about:blank")  # a fresh page load: no table of the page before
    driver.get(f"{served.url}/ui/#signin={code}")
    css(driver, "#dag-table tbody tr")


def accessibility_problems(driver: Any) -> list[str]:
    """axe-core's WCAG A/AA violations on the page as shown now."""
    with open(AXE, encoding="utf8") as script:
        driver.execute_script(script.read())
    results = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})"
        ".then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' ' +"
        " v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))));"
    )
    return list(results)


def keyboard_reaches_every_control(driver: Any) -> list[str]:
    """Tab through the page; the controls never focused (by a stable description).
    A radio group is one tab stop (arrow keys move inside it), so it counts once."""
    describe = (
        "const e = arguments[0]; if (e.type === 'radio') return 'radio group ' + e.name;"
        " return e.tagName + '#' + (e.id || '') + ':' +"
        " (e.getAttribute('aria-label') || e.textContent || e.name || '').trim().slice(0, 40);"
    )
    controls = driver.execute_script(
        "return [...document.querySelectorAll("
        "'a[href], button, input, select, textarea, [tabindex]')]"
        ".filter(e => !e.disabled && e.tabIndex >= 0 && e.offsetParent !== null"
        " && !e.closest('details:not([open])'));"
    )
    wanted = {driver.execute_script(describe, c) for c in controls}
    driver.execute_script(
        "document.activeElement && document.activeElement.blur(); window.focus();"
    )
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("")  # focus the document itself
    reached = set()
    for _ in range(len(wanted) * 8 + 10):  # a date input has a tab stop per part
        driver.switch_to.active_element.send_keys(Keys.TAB)
        reached.add(driver.execute_script(describe, driver.switch_to.active_element))
        if wanted <= reached:
            break
    return sorted(wanted - reached)


def check_view(driver: Any, name: str) -> None:
    screenshot(driver, name)
    assert accessibility_problems(driver) == []
    assert keyboard_reaches_every_control(driver) == []


def test_the_signin_link_signs_in_and_leaves_no_code_behind(browser: Any, served: Served) -> None:
    sign_in(browser, served, role="admin")
    assert "signin" not in browser.current_url
    stored = browser.execute_script("return sessionStorage.getItem('slipstream.key')")
    assert stored.startswith("ssk_")
    assert stored not in browser.current_url
    assert "default · admin" in text_of(browser, "#who")
    # The code's entry was replaced, not pushed: going back leaves the UI.
    browser.back()
    assert "signin" not in browser.current_url


def test_the_dag_list_shows_this_tenants_dags_only(browser: Any, served: Served) -> None:
    sign_in(browser, served)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dag-table tbody tr")) == 4)
    ids = [
        r.get_attribute("data-dag")
        for r in browser.find_elements(By.CSS_SELECTOR, "#dag-table tbody tr")
    ]
    assert ids == ["branching", "etl_hourly", "mapped_fanout", "s3_ingest"]
    assert "acme_only" not in browser.page_source
    wait(browser, lambda d: "S3 landing-zone/orders/*.csv" in text_of(d, "tr[data-dag=s3_ingest]"))
    search = browser.find_element(By.ID, "dag-search")
    search.send_keys("fan", Keys.ENTER)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dag-table tbody tr")) == 1)
    search.clear()
    search.send_keys(Keys.ENTER)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dag-table tbody tr")) == 4)
    check_view(browser, "dags")


def test_unpause_a_dag_from_the_list(browser: Any, served: Served) -> None:
    served.call("PATCH", "/dags/branching", json={"is_paused": True})
    sign_in(browser, served)
    switch = css(browser, "#paused-branching")
    wait(browser, lambda d: not d.find_element(By.ID, "paused-branching").is_selected())
    switch.click()
    wait(browser, lambda d: served.call("GET", "/dags/branching").json()["is_paused"] is False)
    wait(browser, lambda d: "active" in text_of(d, "tr[data-dag=branching]"))


def test_trigger_from_the_params_form_and_watch_the_grid_succeed(
    browser: Any, served: Served
) -> None:
    sign_in(browser, served)
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/trigger")
    field = css(browser, "#param-partitions")
    assert field.get_attribute("value") == "8"  # the param's default
    field.clear()
    field.send_keys("3", Keys.TAB)
    wait(
        browser,
        lambda d: (
            json.loads(d.find_element(By.ID, "conf-json").get_attribute("value"))
            == {"partitions": 3}
        ),
    )
    check_view(browser, "trigger")
    browser.find_element(By.ID, "trigger-submit").click()
    wait(browser, lambda d: "/grid" in d.current_url)
    runs = served.call(
        "GET", "/dags/mapped_fanout/dagRuns", params={"order_by": "-run_after", "limit": 1}
    ).json()
    run = runs["dag_runs"][0]
    assert run["conf"] == {"partitions": 3} and run["run_type"] == "manual"
    css(browser, "#grid[data-loaded=true]")
    wait(
        browser,
        lambda d: (
            served.call(
                "GET", f"/dags/mapped_fanout/dagRuns/{quote(run['dag_run_id'], safe='')}"
            ).json()["state"]
            == "success"
        ),
    )
    browser.execute_script("document.querySelector('details').open = true")
    wait(browser, lambda d: f"{run['dag_run_id']} success" in text_of(d, ".run-links"))
    canvas = browser.find_element(By.CSS_SELECTOR, "canvas")
    canvas.send_keys(Keys.ARROW_DOWN, Keys.ARROW_RIGHT)  # row "process", the only run
    wait(browser, lambda d: "process in manual__" in text_of(d, "#grid-cell"))
    assert "success (3 success)" in text_of(browser, "#grid-cell")
    check_view(browser, "grid")


def _latest_run(served: Served) -> str:
    """The newest finished run of mapped_fanout (partitions 3), made here if the
    trigger test ran on another stack: xdist may interleave other modules' tests,
    which ends this module's served stack and starts a new one."""
    runs = served.call(
        "GET", "/dags/mapped_fanout/dagRuns", params={"order_by": "-run_after", "limit": 1}
    ).json()["dag_runs"]
    if runs:
        return str(runs[0]["dag_run_id"])
    made = served.call(
        "POST",
        "/dags/mapped_fanout/dagRuns",
        json={"logical_date": None, "conf": {"partitions": 3}},
    )
    assert made.status_code == 200, made.text
    run_id = str(made.json()["dag_run_id"])
    assert served.stack.wait_for_run("mapped_fanout", run_id).state.value == "success"
    return run_id


def test_open_a_tasks_log(browser: Any, served: Served) -> None:
    sign_in(browser, served)
    run_id = _latest_run(served)
    browser.get(
        f"{served.url}/ui/#/dags/mapped_fanout/runs/{quote(run_id, safe='')}?task=list_partitions"
    )
    wait(browser, lambda d: "Marking task as SUCCESS" in text_of(d, "#log"))
    assert "success" in text_of(browser, "#ti-state")
    wait(browser, lambda d: "part-0002.parquet" in text_of(d, "#xcom"))  # its return value
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ti-table tbody tr")) == 5
    wait(browser, lambda d: "calls by 5 tries" in text_of(d, "#cost"))  # the usage endpoint
    check_view(browser, "run")


def test_clear_a_task_with_a_dry_run_and_see_it_run_again(browser: Any, served: Served) -> None:
    sign_in(browser, served)
    run_id = _latest_run(served)
    browser.get(
        f"{served.url}/ui/#/dags/mapped_fanout/runs/{quote(run_id, safe='')}?task=summarise"
    )
    wait(browser, lambda d: "success" in text_of(d, "#ti-state"))
    css(browser, "#clear-ti").click()
    listed = wait(browser, lambda d: text_of(d, "#confirm-list"))
    assert "summarise" in listed and "list_partitions" not in listed
    screenshot(browser, "clear-dry-run")
    browser.find_element(By.ID, "confirm-yes").click()
    path = f"/dags/mapped_fanout/dagRuns/{quote(run_id, safe='')}/taskInstances/summarise"
    wait(browser, lambda d: served.call("GET", path).json()["try_number"] == 2)
    wait(browser, lambda d: served.call("GET", path).json()["state"] == "success")
    wait(browser, lambda d: "success" in text_of(d, "#ti-state") and "2 of" in text_of(d, ".facts"))


def test_a_viewer_sees_no_trigger_and_its_api_call_is_refused(browser: Any, served: Served) -> None:
    browser.get(f"{served.url}/ui/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    key_field = css(browser, "#api-key")
    screenshot(browser, "signin")
    key_field.send_keys(served.keys[("default", "viewer")], Keys.ENTER)
    css(browser, "#dag-table tbody tr")
    assert "default · viewer" in text_of(browser, "#who")
    assert browser.find_elements(By.XPATH, "//a[contains(., 'Trigger')]") == []
    assert browser.find_elements(By.CSS_SELECTOR, "input[id^=paused-]") == []
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/v2/dags/mapped_fanout/dagRuns', {method: 'POST', headers: {"
        "'Authorization': 'Bearer ' + sessionStorage.getItem('slipstream.key'),"
        "'Content-Type': 'application/json'}, body: JSON.stringify({logical_date: null})})"
        ".then(r => done(r.status));"
    )
    assert status == 403
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/grid")
    css(browser, "#grid[data-loaded=true]")
    assert browser.find_elements(By.ID, "trigger-link") == []
    screenshot(browser, "viewer")
    run_id = quote(_latest_run(served), safe="")
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/runs/{run_id}?task=summarise")
    wait(browser, lambda d: "success" in text_of(d, "#ti-state"))
    assert browser.find_elements(By.ID, "clear-ti") == []
    assert browser.find_elements(By.ID, "mark-success") == []
    assert "null" not in text_of(browser, ".side")


def test_another_tenants_dag_is_not_found(browser: Any, served: Served) -> None:
    sign_in(browser, served, tenant="default")
    browser.get(f"{served.url}/ui/#/dags/acme_only/grid")
    error = css(browser, "p.error")
    assert "acme_only" in error.text and "acme" not in text_of(browser, "#dag-table")
    sign_in(browser, served, tenant="acme")
    rows = browser.find_elements(By.CSS_SELECTOR, "#dag-table tbody tr")
    assert [r.get_attribute("data-dag") for r in rows] == ["acme_only"]


def test_a_conf_that_is_not_json_is_refused_before_submit(browser: Any, served: Served) -> None:
    sign_in(browser, served)
    before = served.call("GET", "/dags/branching/dagRuns").json()["total_entries"]
    browser.get(f"{served.url}/ui/#/dags/branching/trigger")
    conf = css(browser, "#conf-json")
    conf.clear()
    conf.send_keys("{not json")
    browser.find_element(By.ID, "trigger-submit").click()
    wait(browser, lambda d: "Conf:" in text_of(d, "#conf-error"))
    assert conf.get_attribute("aria-invalid") == "true"
    assert served.call("GET", "/dags/branching/dagRuns").json()["total_entries"] == before


def test_grid_rows_fold_groups_and_count_mapped_instances(browser: Any, served: Served) -> None:
    """The grid's row model as the browser runs it, on one window's answer of a DAG
    with nested groups (one folded) and a mapped task (the example DAGs have no
    groups): rows not read yet are placeholders, a mapped task unfolds in place."""
    from chalicelib.ui.assets import bundle

    module = next(name for name in bundle() if name.startswith("grid_model."))
    browser.get(f"{served.url}/ui/")
    result = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import(arguments[0]).then((m) => {
          // two runs, newest first: letter 0 is r2, letter 1 is r1 (the left column);
          // the first window (5 rows) of a grid of 7 rows
          const answer = {
            runs: [{dag_run_id: "r2"}, {dag_run_id: "r1"}], total_entries: 2,
            total_rows: 7, task_offset: 0,
            task_ids: ["extract", "load", "load.a", "load.b", "load.inner"], kinds: "tgtmf",
            states: ["S.", "..", "SS", "FS", "US"],
            mapped: {"load.b": {counts: [{success: 1, failed: 1}, {success: 2}],
                                instances: ["SS", "F."]}},
            groups: {"load.inner": {counts: [{upstream_failed: 1}, {success: 3}]}},
            codes: {S: "success", F: "failed", U: "upstream_failed", "-": "none", ".": "absent"},
          };
          const blocks = new Map([[0, m.windowRows(answer)]]);
          const open = m.displayRows(7, blocks, 5, new Set(["load.b"]));
          const shut = m.displayRows(7, blocks, 5, new Set());
          const cell = (id, col) => m.cellAt(open.find((r) => r.id === id), col, 2, answer.codes);
          done({
            open: open.map((r) => `${r.kind}:${r.id}:${r.depth}:${r.s}`),
            shut: shut.map((r) => r.id),
            folded: cell("load.inner", 1),
            oldFolded: cell("load.inner", 0),
            heading: cell("load", 1),
            mapped: cell("load.b", 1),
            instance: cell("load.b[1]", 1),
            absent: cell("extract", 0),
            pending: m.cellAt(open[open.length - 1], 1, 2, answer.codes),
          });
        });
        """,
        f"/ui/{module}",
    )
    assert result["open"] == [
        "task:extract:0:0",
        "group:load:0:1",
        "task:load.a:1:2",
        "mapped:load.b:1:3",
        "instance:load.b[0]:2:3",
        "instance:load.b[1]:2:3",
        "folded:load.inner:1:4",
        "pending::0:5",
        "pending::0:6",
    ]
    assert result["shut"] == ["extract", "load", "load.a", "load.b", "load.inner", "", ""]
    assert result["folded"] == {"state": "upstream_failed", "counts": {"upstream_failed": 1}}
    assert result["oldFolded"] == {"state": "success", "counts": {"success": 3}}
    assert result["heading"] == {"state": None}  # an open group's heading has no cells
    assert result["mapped"] == {"state": "failed", "counts": {"success": 1, "failed": 1}}
    assert result["instance"] == {"state": "failed"}
    assert result["absent"] == {"state": None}
    assert result["pending"] == {"state": None}


def test_the_grid_unfolds_a_mapped_task_without_a_node_per_cell(
    browser: Any, served: Served
) -> None:
    """The grid reads one compact answer, paints cells on a canvas (no DOM per
    cell), unfolds a mapped task to its instances, and a cell opens the run."""
    run_id = _latest_run(served)
    sign_in(browser, served)
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/grid")
    css(browser, "#grid[data-loaded=true]")
    assert browser.find_elements(By.CSS_SELECTOR, "#grid *") == browser.find_elements(
        By.CSS_SELECTOR, "#grid canvas, #grid .grid-spacer"
    )
    calls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/api/v2/'))"
    )
    assert any("/slipstream/dags/mapped_fanout/grid" in n and "task_limit=" in n for n in calls)
    assert not any("/taskInstances" in n or n.endswith("/tasks") for n in calls)
    canvas = browser.find_element(By.CSS_SELECTOR, "canvas")
    rows = int(css(browser, "#grid").get_attribute("data-rows"))
    canvas.send_keys(Keys.ARROW_DOWN, " ")  # fold out "process": its instances come next
    wait(browser, lambda d: int(d.find_element(By.ID, "grid").get_attribute("data-rows")) > rows)
    canvas.send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN)
    columns = served.call("GET", "/slipstream/dags/mapped_fanout/grid").json()["runs"]
    canvas.send_keys(*[Keys.ARROW_RIGHT] * len(columns))  # the newest run is the last column
    wait(browser, lambda d: f"process[1] in {run_id}" in text_of(d, "#grid-cell"))
    assert "success" in text_of(browser, "#grid-cell")
    screenshot(browser, "grid-unfolded")
    canvas.send_keys(Keys.ENTER)
    wait(browser, lambda d: f"/runs/{quote(run_id, safe='')}" in d.current_url)
    assert "task=process" in browser.current_url


def test_graph_model_collapses_groups_and_lays_out_columns(browser: Any, served: Served) -> None:
    """The Graph view's model in the browser: a collapsed group is one node whose
    edges are its members' edges, and each node sits right of its upstream nodes."""
    from chalicelib.ui.assets import bundle

    module = next(name for name in bundle() if name.startswith("graph_model."))
    browser.get(f"{served.url}/ui/")
    result = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import(arguments[0]).then((m) => {
          const tasks = [
            {task_id: "start", downstream_task_ids: ["load.a", "load.b"]},
            {task_id: "load.a", downstream_task_ids: ["load.b"]},
            {task_id: "load.b", downstream_task_ids: ["end"], is_mapped: true},
            {task_id: "end", downstream_task_ids: []}];
          const shut = m.buildGraph(tasks, new Set());
          const open = m.buildGraph(tasks, new Set(["load"]));
          const place = m.layout(open);
          done({
            shut: shut.nodes.map((n) => `${n.kind}:${n.id}:${n.members.length}`),
            shutEdges: shut.edges.map((e) => e.join(">")),
            openEdges: open.edges.map((e) => e.join(">")),
            columns: place.columns,
          });
        });
        """,
        f"/ui/{module}",
    )
    assert result["shut"] == ["task:start:1", "group:load:2", "task:end:1"]
    assert result["shutEdges"] == ["start>load", "load>end"]
    assert result["openEdges"] == ["start>load.a", "start>load.b", "load.a>load.b", "load.b>end"]
    assert result["columns"] == [["start"], ["load.a"], ["load.b"], ["end"]]


def test_the_graph_shows_a_runs_states(browser: Any, served: Served) -> None:
    run_id = _latest_run(served)
    sign_in(browser, served)
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/grid")
    css(browser, "#graph-link").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#graph[data-drawn=true]"))
    nodes = browser.find_elements(By.CSS_SELECTOR, "#graph g.node")
    assert [n.get_attribute("data-node") for n in nodes] == [
        "list_partitions",
        "process",
        "summarise",
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph path.edge")) == 2
    assert all("success" in n.get_attribute("aria-label") for n in nodes)
    nodes[1].send_keys("")  # focus speaks the node's state in the chosen run
    wait(
        browser, lambda d: f"Mapped task process: success in {run_id}" in text_of(d, "#graph-node")
    )
    check_view(browser, "graph")
    browser.find_elements(By.CSS_SELECTOR, "#graph g.node")[2].send_keys(Keys.ENTER)
    wait(browser, lambda d: "task=summarise" in d.current_url)


def test_start_a_backfill_and_watch_its_progress(browser: Any, served: Served) -> None:
    sign_in(browser, served, role="op")
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/backfill")
    css(browser, "#bf-from")
    # Typing into datetime-local depends on the browser's locale; set the values.
    browser.execute_script(
        "document.getElementById('bf-from').value = '2024-01-01T00:00';"
        "document.getElementById('bf-to').value = '2024-01-02T00:00';"
    )
    browser.find_element(By.ID, "bf-dry-run").click()
    preview = wait(browser, lambda d: text_of(d, "#backfill-preview") or text_of(d, ".error"))
    assert "2 run(s) would be created" in preview
    browser.find_element(By.ID, "bf-start").click()
    wait(browser, lambda d: "2 success" in text_of(d, "#backfill-table"))
    wait(browser, lambda d: "completed" in text_of(d, "#backfill-table"))
    check_view(browser, "backfill")


def test_a_user_may_not_start_a_backfill(browser: Any, served: Served) -> None:
    sign_in(browser, served, role="user")
    browser.get(f"{served.url}/ui/#/dags/mapped_fanout/backfill")
    css(browser, "#backfill-title")
    assert browser.find_elements(By.ID, "bf-start") == []


ACME_V2 = """
import datetime as dt

from chalicelib.sdk import DAG
from operators.empty import EmptyOperator

with DAG("acme_only", schedule="@daily", start_date=dt.datetime(2024, 1, 1), tags=["acme"]):
    EmptyOperator(task_id="noop", retries=3) >> EmptyOperator(task_id="extra")
"""


def test_versions_list_and_what_changed_between_two(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    from chalicelib import wiring
    from chalicelib.deploy.deployer import deploy
    from tests.api.served import ROOT

    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "acme_only.py").write_text(ACME_V2)
    (tmp_path / "operators").symlink_to(ROOT / "operators")
    report = deploy(
        [str(tmp_path / "dags")],
        store=wiring.state_store(),
        bundles=wiring.bundle_store(),
        bundle_root=str(tmp_path),
        now=wiring.utc_now(),
        stage="local",
        tenant="acme",
    )
    assert report.ok, report.problems
    sign_in(browser, served, tenant="acme", role="viewer")
    browser.get(f"{served.url}/ui/#/dags/acme_only/versions")
    wait(browser, lambda d: "Tasks added (1)" in text_of(d, "#version-diff"))
    diff = text_of(browser, "#version-diff")
    assert "+ extra" in diff and "Tasks removed (0)" in diff
    assert "~ noop: downstream, retries" in diff
    assert len(browser.find_elements(By.CSS_SELECTOR, "#versions-table tbody tr")) == 2
    check_view(browser, "versions")


def test_admin_shows_what_the_role_may_read_and_never_a_secret(
    browser: Any, served: Served
) -> None:
    created = served.call(
        "POST",
        "/connections",
        json={
            "connection_id": "warehouse",
            "conn_type": "postgres",
            "host": "db.internal",
            "login": "etl",
            "password": "hunter2-secret",
        },
    )
    assert created.status_code in (200, 201), created.text
    sign_in(browser, served, role="admin")
    browser.get(f"{served.url}/ui/#/admin")
    wait(browser, lambda d: "warehouse" in text_of(d, "#admin-connections"))
    assert "hunter2-secret" not in browser.page_source
    assert "default-viewer" in text_of(browser, "#admin-keys")
    assert "default_pool" in text_of(browser, "#admin-pools")
    assert "ui_sign_in" in text_of(browser, "#admin-events")
    check_view(browser, "admin")
    sign_in(browser, served, role="viewer")
    browser.get(f"{served.url}/ui/#/admin")
    css(browser, "#admin-pools")
    assert browser.find_elements(By.ID, "admin-connections") == []
    assert browser.find_elements(By.ID, "admin-keys") == []


ROWS_DAG = """
import datetime as dt

from chalicelib.sdk import DAG, TaskGroup
from operators.empty import EmptyOperator

with DAG("many_rows", schedule=None, start_date=dt.datetime(2024, 1, 1)):
    for group in range(3):
        with TaskGroup(f"g{group}"):
            for index in range(40):
                EmptyOperator(task_id=f"t{index:02d}")
"""


def test_the_grid_reads_the_rows_in_view_and_the_next_window_on_scroll(
    browser: Any, served: Served, tmp_path: Any
) -> None:
    """123 rows (3 groups of 40 tasks): the grid reads windows of 40 rows, the ones
    in view and the next; the last window only once the user scrolls to it. A
    folded group is one row, asked of the server with ``folded=``."""
    from tests.api.served import ROOT

    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "many_rows.py").write_text(ROWS_DAG)
    (tmp_path / "operators").symlink_to(ROOT / "operators")
    assert served.stack.deploy(tmp_path).ok
    sign_in(browser, served)
    browser.get(f"{served.url}/ui/#/dags/many_rows/grid")
    css(browser, "#grid[data-loaded=true]")
    assert css(browser, "#grid").get_attribute("data-rows") == "123"

    def windows(d: Any) -> set[str]:
        names = d.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => n.includes('/slipstream/dags/many_rows/grid'))"
        )
        return {n.split("task_offset=")[1].split("&")[0] for n in names if "task_offset=" in n}

    wait(browser, lambda d: windows(d) >= {"0", "40"})
    assert "120" not in windows(browser)
    browser.execute_script("document.getElementById('grid').scrollTop = 1e6")
    wait(browser, lambda d: "120" in windows(d))
    canvas = browser.find_element(By.CSS_SELECTOR, "canvas")
    browser.execute_script("document.getElementById('grid').scrollTop = 0")
    canvas.send_keys(" ")  # the first row is the heading of g0: fold it
    wait(browser, lambda d: d.find_element(By.ID, "grid").get_attribute("data-rows") == "83")
    assert "Folded group g0" in text_of(browser, "#grid-cell")
