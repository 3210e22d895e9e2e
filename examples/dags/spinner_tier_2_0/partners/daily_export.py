"""A partner export that reads a variable and a connection, in templates and in Python.

What it shows (docs/authoring.md):
- `Variable.get("partner_export_config", default_var=..., deserialize_json=True)` in a Python task,
  and `{{ var.value.get("partner_name", "acme") }}` / `{{ var.json... }}` in a template;
- `BaseHook.get_connection("partner_sftp")` in Python and `{{ conn.partner_sftp.host }}` in a template;
- the SFTP password, the connection's URI and the secret-looking variable `partner_api_token` are
  masked as *** in the task logs, even where the task prints them.

It runs as it is on `make run` (defaults, and a dry run without the connection). Set them for real with:

    spinner variables set partner_export_config '{"region": "us", "max_rows": 500}'
    echo 'tok-...' | spinner variables set partner_api_token -
    spinner connections set partner_sftp --uri 'sftp://exporter:PASSWORD@sftp.partner.example:2222/outbox'
"""

from __future__ import annotations

import datetime as dt

from spinner import DAG, BaseHook, BashOperator, PythonOperator, Tier, Variable

DEFAULT_CONFIG = {"region": "eu", "max_rows": 100}


def build_export(ds: str) -> dict[str, object]:
    config = Variable.get("partner_export_config", default_var=DEFAULT_CONFIG, deserialize_json=True)
    token = Variable.get("partner_api_token", default_var="")
    print(f"building the {config['region']} export of {ds}: at most {config['max_rows']} rows")
    if token:
        print(f"authenticating to the partner API with token {token}")  # the log shows ***
    return {"region": config["region"], "rows": min(42, int(config["max_rows"]))}


def upload(ds: str) -> str:
    try:
        sftp = BaseHook.get_connection("partner_sftp")
    except KeyError:  # not set up (e.g. on `make run`): nothing to upload to
        print("no partner_sftp connection: dry run, nothing uploaded")
        return "dry-run"
    print(f"uploading export-{ds}.csv to {sftp.host}:{sftp.port} as {sftp.login} into /{sftp.schema}")
    print(f"connection URI: {sftp.get_uri()}")  # the log shows *** (it holds the password)
    return f"{sftp.host}/{sftp.schema}/export-{ds}.csv"


with DAG(
    dag_id="partners_daily_export",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="partners",
    tags=["partners", "example"],
    description="Daily export for a partner, configured by a variable and a connection",
) as dag:
    build = PythonOperator(task_id="build_export", python_callable=build_export)
    announce = BashOperator(
        task_id="announce",
        bash_command=(
            "echo 'export for {{ var.value.get(\"partner_name\", \"acme\") }}, "
            "{{ var.json.get(\"partner_export_config\", {\"region\": \"eu\"})[\"region\"] }} region'; "
            "{% set sftp = conn.get('partner_sftp') %}"
            "{% if sftp %}echo 'target {{ sftp.host }} as {{ sftp.login }}, password {{ sftp.password }}'"
            "{% else %}echo 'no partner_sftp connection: dry run'{% endif %}"
        ),
    )
    send = PythonOperator(task_id="upload", python_callable=upload)
    build >> announce >> send
