"""An on-demand regional revenue report with a typed trigger form.

What it shows:
- Params: each `Param` has a default and a JSON Schema (type, enum, minimum, maximum, format...).
  The DAG page draws a trigger form from them, the API describes them (GET /api/v1/dags/<id>),
  and a trigger whose conf breaks one is refused with 400 naming the param; nothing is created.
  `email` has no default, so a trigger must give it;
- `{{ params.x }}` in templates, with user_defined_macros and user_defined_filters;
- render_template_as_native_obj: "{{ params.days }}" renders as the int 7, not the string "7".
"""

from __future__ import annotations

from spinner import DAG, Param, PythonOperator, Tier


def report(days: int, regions: list[str], title: str, send_to: str) -> str:
    assert isinstance(days, int) and isinstance(regions, list), "native rendering keeps the types"
    text = f"{title}: revenue over {days} days for {', '.join(regions)} -> {send_to}"
    print(text)
    return text


with DAG(
    dag_id="finance_region_report",
    tier=Tier.TIER2,
    schedule=None,
    owner="finance",
    tags=["finance", "example"],
    description="Regional revenue report, triggered by hand with a form",
    params={
        "days": Param(7, type="integer", minimum=1, maximum=90, title="Days", description="How many days back"),
        "region": Param("eu", enum=["eu", "us", "apac"], title="Region"),
        "include_refunds": Param(False, type="boolean", title="Include refunds"),
        "email": Param(type="string", format="email", title="Send to", description="Who gets the report"),
    },
    user_defined_macros={"regions_of": lambda region: {"eu": ["fr", "de"], "us": ["us"], "apac": ["jp", "sg"]}[region]},
    user_defined_filters={"headline": lambda text: text.upper()},
    render_template_as_native_obj=True,
) as dag:
    PythonOperator(
        task_id="report",
        python_callable=report,
        op_kwargs={
            "days": "{{ params.days }}",
            "regions": "{{ regions_of(params.region) }}",
            "title": "{{ 'revenue report' | headline }}",
            "send_to": "{{ params.email }}",
        },
    )
