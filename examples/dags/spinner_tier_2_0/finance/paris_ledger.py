"""The finance team's nightly ledger close, at 02:00 Paris time all year round.

What it shows:
- a DAG in a local time zone: start_date in Europe/Paris, schedule "0 2 * * *" evaluated on the
  Paris wall clock, so the run stays at 02:00 local across both daylight-saving changes (on the
  spring-forward day, when 02:00 does not exist, it runs at 03:00). The UI and API show UTC and
  state the zone;
- a template file: `bash_command="scripts/close_ledger.sh"` ends with .sh, so the script is read
  from this DAG's folder and rendered with Jinja (ds, macros, params) before it runs;
- template_searchpath: `{% include "ledger_totals.sql" %}` finds sql/ledger_totals.sql;
- Airflow's context names: macros.ds_add, prev_ds / next_ds, data_interval_start/end,
  prev_data_interval_end_success (where the last successful close stopped).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from spinner import DAG, BashOperator, PythonOperator, Tier


def run_query(templates_dict: dict[str, str], prev_data_interval_end_success: dt.datetime | None) -> int:
    query = templates_dict["query"]
    print(f"running ledger query (last successful close ended at {prev_data_interval_end_success}):\n{query}")
    return len(query.splitlines())


with DAG(
    dag_id="finance_paris_ledger",
    tier=Tier.TIER2,
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1, 2, 0, tzinfo=ZoneInfo("Europe/Paris")),
    catchup=False,
    owner="finance",
    tags=["finance", "example"],
    description="Nightly ledger close at 02:00 Europe/Paris",
    params={"ledger": "eu-main"},
    template_searchpath=["sql"],
    max_active_runs=1,
) as dag:
    close = BashOperator(task_id="close_ledger", bash_command="scripts/close_ledger.sh")
    totals = PythonOperator(
        task_id="ledger_totals",
        python_callable=run_query,
        templates_dict={"query": '{% include "ledger_totals.sql" %}'},
    )
    close >> totals
