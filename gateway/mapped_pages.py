"""The page of a mapped task in a run (docs/adr/0007-dynamic-task-mapping.md): its instances at a glance
(a bar of their states in proportion) and one row per instance, each linking to its log, XCom and
rendered fields. Actions on it act on every instance; an instance's own page acts on that one."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from gateway.views import MappedSummary
from gateway.web import render

BAR_W = 480.0  # the page's bar; the grid's cells draw a small one of their own


def mapped_task_page(request: Request, p: dict[str, Any], summary: MappedSummary, can_edit: bool) -> Response:
    base = "/dags/{}/runs/{}/tasks/{}".format(*(quote(p[k], safe="") for k in ("dag_id", "run_id", "task_id")))
    rows = [
        {
            "ti": t,
            "log": f"{base}/log?map_index={t.map_index}",
            "xcom": f"{base}/log?map_index={t.map_index}#xcoms",
            "rendered": f"{base}/rendered?map_index={t.map_index}",
        }
        for t in summary.instances
    ]
    context = {
        "p": p, "summary": summary, "rows": rows, "can_edit": can_edit, "bar_w": BAR_W,
        "segments": summary.segments(BAR_W),
    }  # fmt: skip
    return render(request, "mapped_task.html", context)
