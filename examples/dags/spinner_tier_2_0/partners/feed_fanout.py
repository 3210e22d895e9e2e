"""Load every partner feed of the day in parallel: dynamic task mapping.

`list_feeds` finds the day's feeds at run time (a list of dicts); `load_feed.expand(feed=...)`
makes one task instance per feed, each with its own process (or pod), log, retries and XCom, shown
in the grid as one row with its count. `summarize` gets the list of every instance's result in
map_index order (the "reduce" step) and only starts when all loads are done.

Two more kinds of mapping:
- `publish` maps a BashOperator over a literal list of regions with fixed arguments given to
  `.partial(...)` (its `{{ ti.map_index }}` says which instance it is);
- `export` maps over two arguments: every (region, fmt) combination, 2 x 2 = 4 instances,
  numbered with the last argument varying fastest.

Run it by hand with other feeds: `spinner dags trigger partner_feed_fanout --conf '{"partners": ["acme"]}'`;
an empty list makes `load_feed` skipped ("mapped over nothing") and `summarize` skipped after it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner import DAG, BashOperator, Param, Tier, task

REGIONS = ["eu", "us"]

with DAG(
    dag_id="partner_feed_fanout",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="partners",
    tags=["partners", "mapping", "example"],
    description="One load per partner feed, found at run time",
    params={"partners": Param(["acme", "globex", "initech"], type="array", description="whose feeds to load")},
) as dag:

    @task
    def list_feeds(params: dict[str, Any], ds_nodash: str) -> list[dict[str, Any]]:
        feeds = [
            {"partner": p, "file": f"{p}_{ds_nodash}.csv", "rows": 10 * (i + 1)}
            for i, p in enumerate(params["partners"])
        ]
        print(f"{len(feeds)} feeds today: {', '.join(f['file'] for f in feeds)}")
        return feeds

    @task(retries=2, retry_delay=dt.timedelta(seconds=30))
    def load_feed(feed: dict[str, Any], ti: Any = None) -> dict[str, Any]:
        print(f"instance {ti.map_index}: loading {feed['rows']} rows of {feed['file']}")
        return {"partner": feed["partner"], "rows": feed["rows"]}

    @task
    def summarize(loaded: list[dict[str, Any]]) -> str:
        line = f"{len(loaded)} feeds, {sum(x['rows'] for x in loaded)} rows: " + ", ".join(x["partner"] for x in loaded)
        print(line)
        return line

    loaded = load_feed.expand(feed=list_feeds())
    done = summarize(loaded)

    publish = BashOperator.partial(
        task_id="publish",
        env={"TARGET": "partner-portal"},
        append_env=True,
    ).expand(
        bash_command=[f'echo "publishing {region} to $TARGET as instance {{{{ ti.map_index }}}}"' for region in REGIONS]
    )

    @task
    def export(region: str, fmt: str) -> str:
        return f"{region}.{fmt}"

    done >> publish
    done >> export.expand(region=REGIONS, fmt=["csv", "parquet"])
