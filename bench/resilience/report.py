"""docs/resilience.md: the generated part (between the markers) holds a table per fault from one suite
run; the rest of the file is written by hand and kept as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN = "<!-- resilience:begin (written by `make resilience`; edit outside the markers) -->"
END = "<!-- resilience:end -->"

COLUMNS = [
    "retries", "runs ok / failed", "tries (failed)", "executions", "lost", "repeated", "false failures",
    "recovery s", "logs complete", "notes",
]  # fmt: skip


def _recovery(s: dict[str, Any]) -> str:
    value = s.get("recovery_s")
    return "—" if value is None else f"{value:.1f}"


def _notes(s: dict[str, Any]) -> str:
    notes = []
    if s.get("fault") in ("kill-scheduler", "stop-scheduler"):
        takeover = s.get("takeover_s")
        by = f" by {s['taken_over_by']}" if s.get("taken_over_by") else ""
        notes.append(f"lease taken over{by} after {takeover:.1f} s" if takeover is not None else "no takeover")
    elif s.get("fault") != "none":
        if s.get("outage_s"):
            notes.append(f"away {s['outage_s']:.1f} s")
        if s.get("idle_from_fault_s") is not None:
            notes.append(f"longest idle from the fault {s['idle_from_fault_s']:.1f} s")
    if s.get("runs_unended") or s.get("runs_missing"):
        notes.append(f"{s.get('runs_unended', 0)} runs not ended")
    if s.get("same_try_twice"):
        notes.append(f"{s['same_try_twice']} try numbers executed twice")
    if s.get("tasks_never_run"):
        notes.append(f"{s['tasks_never_run']} tasks never ran")
    if s.get("leaked"):
        notes.append(f"{len(s['leaked'])} processes left running")
    if not s.get("all_ended", True):
        notes.append("deadline passed")
    notes.append(f"{s.get('work_s', 0):.0f} s of work")
    return "; ".join(notes)


def row(s: dict[str, Any]) -> list[str]:
    if s.get("error"):
        return [str(s["retries"]), f"error: {s['error']}", *[""] * (len(COLUMNS) - 2)]
    logs = f"{s['logs_complete']}/{s['ended_tries']}"
    if "logs_archived" in s:
        logs += f" (S3 {s['logs_archived']})"
    return [
        str(s["retries"]),
        f"{s['runs_success']} / {s['runs_failed']}",
        f"{s['tries']} ({s['tries_failed']})",
        str(s["executions"]),
        str(s["lost"]),
        str(s["repeated"]),
        str(s["false_failures"]),
        _recovery(s),
        logs,
        _notes(s),
    ]


def tables(results: dict[str, Any]) -> str:
    by_fault: dict[str, list[dict[str, Any]]] = {}
    for s in results["scenarios"]:
        by_fault.setdefault(s["fault"], []).append(s)
    out = []
    for fault, scenarios in by_fault.items():
        victims = sorted({s.get("fault_victim", "") for s in scenarios} - {""})
        out.append(f"### {fault}" + (f" ({', '.join(victims)})" if victims else ""))
        out.append("")
        out.append("| " + " | ".join(COLUMNS) + " |")
        out.append("|" + "---|" * len(COLUMNS))
        out.extend("| " + " | ".join(row(s)) + " |" for s in scenarios)
        out.append("")
    return "\n".join(out)


def generated(results: dict[str, Any]) -> str:
    m = results["machine"]
    o = results["options"]
    minutes = results["wall_s"] / 60
    head = [
        BEGIN,
        "",
        f"Commit `{results['commit']}`, on {m['cores']} cores of {m['cpu']} (single-core reference "
        f"{m['cpu_ref_s']} s, load {m['load_1m']} at the start, Python {m['python']}).",
        f"Each scenario: {o['runs']} runs x {o['tasks']} tasks = {o['runs'] * o['tasks']} tasks of "
        f"{o['task_seconds']} s, retry delay {o['retry_delay']} s, the fault at {o['at']:.0%} done; "
        f"S3 log archive {'off' if o['no_s3'] else 'on'}. The whole suite took {minutes:.0f} min.",
        "",
        "",
    ]
    return "\n".join(head) + tables(results) + "\n" + END


SKELETON = f"""# Resilience

{BEGIN}
{END}
"""


def write(path: Path, results: dict[str, Any]) -> None:
    text = path.read_text() if path.exists() else SKELETON
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + "\n\n" + BEGIN + "\n" + END + "\n"
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    path.write_text(before + generated(results) + after)
