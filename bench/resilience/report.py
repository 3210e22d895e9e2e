"""docs/resilience.md: the generated parts (between the markers) hold a table per fault from one suite
run, one part per executor backend (local processes, pods), so a run of one backend keeps the other's
tables; the rest of the file is written by hand and kept as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN = "<!-- resilience:begin (written by `make resilience`; edit outside the markers) -->"
END = "<!-- resilience:end -->"
POD_BEGIN = "<!-- resilience-pods:begin (written by `make resilience`, the pod backend; edit outside the markers) -->"
POD_END = "<!-- resilience-pods:end -->"
MARKERS = {"local": (BEGIN, END), "kubernetes": (POD_BEGIN, POD_END)}

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
        if s.get("pods_at_fault") is not None:
            notes.append(f"{s['pods_at_fault']} pods running at the fault")
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
    if s.get("logs_without_output"):
        notes.append(f"{s['logs_without_output']} local logs without the task's output")
    if s.get("pods_left_running"):
        notes.append(f"{s['pods_left_running']} pods left running")
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
        if backend_of(s) == "kubernetes":  # a pod's log is its runner's S3 archive; the local file is a copy
            logs = f"S3 {s['logs_archived']}/{s['ended_tries']} (local {s['logs_complete']})"
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


def backend_of(s: dict[str, Any]) -> str:
    return str(s.get("backend", "local"))


def backends(results: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(backend_of(s) for s in results["scenarios"]))


def tables(results: dict[str, Any], backend: str | None = None) -> str:
    """A table per fault (of `backend`'s scenarios; None: of every backend, each fault named with it)."""
    by_fault: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in results["scenarios"]:
        if backend is None or backend_of(s) == backend:
            by_fault.setdefault((backend_of(s), s["fault"]), []).append(s)
    out = []
    for (on, fault), scenarios in by_fault.items():
        victims = sorted({s.get("fault_victim", "") for s in scenarios} - {""})
        title = f"pods: {fault}" if on == "kubernetes" else fault
        out.append(f"### {title}" + (f" ({', '.join(victims)})" if victims else ""))
        out.append("")
        out.append("| " + " | ".join(COLUMNS) + " |")
        out.append("|" + "---|" * len(COLUMNS))
        out.extend("| " + " | ".join(row(s)) + " |" for s in scenarios)
        out.append("")
    return "\n".join(out)


def generated(results: dict[str, Any], backend: str = "local") -> str:
    m = results["machine"]
    o = results["options"]
    mine = [s for s in results["scenarios"] if backend_of(s) == backend]
    minutes = sum(float(s.get("wall_s", 0)) for s in mine) / 60
    begin, end = MARKERS[backend]
    what = (
        "The executor's pod backend: every try a pod on the Kubernetes test double (tests/fakes/kubernetes.py, "
        "in a thread of the suite's process; its pods are local processes, so they outlive the executor); "
        "logs complete = archived in S3 with their marker, of the ended tries (in brackets, the executor's "
        "local copies marked complete)."
        if backend == "kubernetes"
        else ""
    )
    head = [
        begin,
        "",
        *([what, ""] if what else []),
        f"Commit `{results['commit']}`, on {m['cores']} cores of {m['cpu']} (single-core reference "
        f"{m['cpu_ref_s']} s, load {m['load_1m']} at the start, Python {m['python']}).",
        f"Each scenario: {o['runs']} runs x {o['tasks']} tasks = {o['runs'] * o['tasks']} tasks of "
        f"{o['task_seconds']} s, retry delay {o['retry_delay']} s, the fault at {o['at']:.0%} done; "
        f"S3 log archive {'off' if o['no_s3'] else 'on'}. The {len(mine)} scenarios took {minutes:.0f} min.",
        "",
        "",
    ]
    return "\n".join(head) + tables(results, backend) + "\n" + end


SKELETON = f"""# Resilience

{BEGIN}
{END}
"""


def write(path: Path, results: dict[str, Any]) -> None:
    """Replaces the part of each backend the results have; the other backend's part is kept."""
    text = path.read_text() if path.exists() else SKELETON
    for backend in backends(results):
        begin, end = MARKERS[backend]
        if begin not in text or end not in text:
            text = text.rstrip("\n") + "\n\n" + begin + "\n" + end + "\n"
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = before + generated(results, backend) + after
    path.write_text(text)
