"""Dynamic task mapping on real processes, SQLite and MariaDB: one task instance per item, each its
own process, log, retries and XCom; the reduce step gets every instance's value; mapping over
nothing skips; too many items and a value that is not a list fail with messages that say why."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import Spinner

pytestmark = pytest.mark.e2e

# Instance 1 fails its first try (a marker file tells it the second one came) and then succeeds:
# only that instance runs again. The limit is 4 instances (SPINNER_MAX_MAP_LENGTH below).
FAULTS_DAG = """
import datetime as dt
from pathlib import Path

from spinner import DAG, Tier, task

with DAG("mapping_faults", tier=Tier.TIER2) as dag:

    @task(retries=1, retry_delay=dt.timedelta(seconds=0))
    def flaky(n: int, run_id: str) -> int:
        marker = Path(dag.fileloc).parent / f"tried_{run_id}_{n}".replace(":", "_")
        if n == 1 and not marker.exists():
            marker.write_text("once")
            raise RuntimeError("item 1 fails its first try")
        return n * 10

    @task
    def one() -> int:
        return 1

    @task
    def use(x: int) -> int:
        return x

    @task
    def too_many(x: int) -> int:
        return x

    flaky.expand(n=[0, 1, 2])
    use.expand(x=one())
    too_many.expand(x=[1, 2, 3, 4, 5])
"""


E2E_FILES = {"spinner_tier_2_0/mapping_tests/faults.py": FAULTS_DAG}
E2E_ENV = {"SPINNER_MAX_MAP_LENGTH": "4"}


def xcom(spinner: Spinner, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    body = spinner.api(f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/xcom?map_index={map_index}")
    values = {x["key"]: x["value"] for x in body["xcoms"] if x["map_index"] == map_index}
    return values.get("return_value")


def test_a_dag_fans_out_over_an_upstream_list_and_reduces_the_results(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/partners/feed_fanout.py."""
    result = spinner.run_dag("partner_feed_fanout")
    states = spinner.states(result)
    assert result["run"]["state"] == "success", result
    expected = {"list_feeds", "summarize", *(f"load_feed[{i}]" for i in range(3))}
    expected |= {"publish[0]", "publish[1]", *(f"export[{i}]" for i in range(4))}
    assert states == dict.fromkeys(expected, "success"), states
    run_id = result["run"]["run_id"]
    day = run_id and result["run"]["logical_date"][:10].replace("-", "")
    # Each instance ran in its own process with its own item, log and XCom.
    for i, (partner, rows) in enumerate([("acme", 10), ("globex", 20), ("initech", 30)]):
        log = spinner.task_log("partner_feed_fanout", run_id, "load_feed", map_index=i)
        assert f"instance {i}: loading {rows} rows of {partner}_{day}.csv" in log, log
        assert xcom(spinner, "partner_feed_fanout", run_id, "load_feed", i) == {"partner": partner, "rows": rows}
    # The reduce step got every instance's value, in map_index order.
    assert xcom(spinner, "partner_feed_fanout", run_id, "summarize") == "3 feeds, 60 rows: acme, globex, initech"
    # A literal list with fixed .partial() arguments; two mapped arguments give every combination.
    for i, region in enumerate(["eu", "us"]):
        log = spinner.task_log("partner_feed_fanout", run_id, "publish", map_index=i)
        assert f"publishing {region} to partner-portal as instance {i}" in log, log
    exports = [xcom(spinner, "partner_feed_fanout", run_id, "export", i) for i in range(4)]
    assert exports == ["eu.csv", "eu.parquet", "us.csv", "us.parquet"]
    # The grid shows the mapped task once, with its count.
    page = spinner.get("/dags/partner_feed_fanout")
    assert page.status_code == 200 and 'data-count="3"' in page.text and "[4]" in page.text, page.text[:2000]


def test_mapping_over_nothing_skips_the_task_and_what_needs_it(spinner: Spinner) -> None:
    result = spinner.run_dag("partner_feed_fanout", conf={"partners": []})
    states = spinner.states(result)
    assert result["run"]["state"] == "success", result
    assert states["list_feeds"] == "success" and states["load_feed"] == "skipped", states
    assert states["summarize"] == "skipped" and states["publish"] == "skipped", states
    assert "mapped over nothing" in result["tasks"]["load_feed"]["error"], result["tasks"]["load_feed"]


def test_each_instance_retries_alone_and_bad_inputs_fail_with_reasons(spinner: Spinner) -> None:
    result = spinner.run_dag("mapping_faults")
    states, tasks = spinner.states(result), result["tasks"]
    assert result["run"]["state"] == "failed", result
    assert {k: v for k, v in states.items() if k.startswith("flaky")} == {
        "flaky[0]": "success",
        "flaky[1]": "success",
        "flaky[2]": "success",
    }, states
    # Only the instance that failed ran again.
    assert [tasks[f"flaky[{i}]"]["try_number"] for i in range(3)] == [1, 2, 1], tasks
    run_id = result["run"]["run_id"]
    first = spinner.task_log("mapping_faults", run_id, "flaky", try_number=1, map_index=1)
    assert "item 1 fails its first try" in first, first
    assert xcom(spinner, "mapping_faults", run_id, "flaky", 1) == 10
    use_error = tasks["use"]["error"]
    assert states["use"] == "failed" and "one" in use_error and "int" in use_error and "list" in use_error, use_error
    assert states["too_many"] == "failed", tasks["too_many"]
    assert "5" in tasks["too_many"]["error"] and "max_map_length" in tasks["too_many"]["error"], tasks["too_many"]
