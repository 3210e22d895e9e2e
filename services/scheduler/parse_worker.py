"""Parses one DAG file in its own process and hands the result back as JSON.

The DAG processor forks it from its warm fork server (`run(ROOT, FILE, RESULT_PATH, POLICY[, USER])`:
the result is written to RESULT_PATH) or, when the fork server is unavailable, starts it as
`python -m services.scheduler.parse_worker ROOT FILE POLICY [USER]` (the result is printed after a marker).
POLICY is the scheduler's pod policy as JSON (spinner/podpolicy.py): the child's environment has none
of the platform's settings, so the policy every task's pod_override is checked against comes in here.
Either way a file that crashes, hangs or leaks cannot hurt the scheduler: the parent kills it
on timeout and records an import error.

Nothing the file starts outlives the parse, not even a daemon (a double fork into a session of its
own, which the kill of the parse's process group misses): the fork server is the subreaper of its
children (spinner/forkserver.py), and a fresh worker is its own. It makes itself a subreaper, forks
the parse and, once the parse has ended, kills everything re-parented to it (spinner/reaper.py); it
exits as the parse did (of the same signal, if one killed it). SIGTERM stops the parse that way too.
It imports no DAG code and keeps its user: as root it can kill the DAG user's processes, as the DAG
user its own. Where there is no subreaper (not Linux), the worker is the parse itself.

With USER (`uid:gid:name`, spinner/sandbox.py) the worker starts as root, opens what it needs (the
result file, the DAG folder) and becomes that user before the file is imported: DAG code never runs
as root.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def parse(root: Path, file: Path, policy: str = "") -> dict[str, object]:
    from spinner.podpolicy import PodPolicy
    from spinner.sdk.loader import dag_import_path, extra_sys_path, load_dags_from_file
    from spinner.sdk.parse_state import checking_pod_overrides
    from spinner.sdk.serialization import serialize_dag

    pod_policy = PodPolicy.from_json(policy) if policy else PodPolicy()
    try:
        with extra_sys_path(dag_import_path(root)), checking_pod_overrides(pod_policy):
            dags = load_dags_from_file(file)
        return {"dags": [serialize_dag(d) for d in dags], "error": None}
    except BaseException as e:  # anything the file does is an import error, even SystemExit
        if isinstance(e, KeyboardInterrupt):
            raise
        lines = traceback.format_exception(e)
        # Drop the frames of Spinner's own loader: the user wants their file's frames.
        text = "".join(lines)
        return {"dags": [], "error": text.replace(str(root) + "/", "")}


def parse_as(root: Path, file: Path, policy: str, user_spec: str) -> str:
    """The parse's result as JSON text; with a user, the file is imported as that user (see above)."""
    from spinner.sandbox import DagUser, become

    user = DagUser.from_spec(user_spec)
    if user is None:
        return json.dumps(parse(root, file, policy))
    root, file = root.resolve(), file.resolve()
    views, view = become(user, root)
    result = parse(view, views.inside(file), policy)
    return views.unview(json.dumps(result))


def run(args: list[str]) -> int:
    """In a child of the fork server: parse, write the result file (left empty, the child died).

    The file is opened before the parse, while the child may still write where the scheduler keeps it
    (a folder of root's alone), and written whole at the end."""
    root, file, result_path = Path(args[0]), Path(args[1]), Path(args[2])
    out = os.open(result_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    text = parse_as(root, file, args[3] if len(args) > 3 else "", args[4] if len(args) > 4 else "")
    sys.stdout.flush()
    with os.fdopen(out, "w") as f:
        f.write(text)
    return 0


def _parse_and_print() -> int:
    root, file = Path(sys.argv[1]), Path(sys.argv[2])
    text = parse_as(root, file, sys.argv[3] if len(sys.argv) > 3 else "", sys.argv[4] if len(sys.argv) > 4 else "")
    sys.stdout.flush()
    sys.__stdout__.write("\n@@SPINNER-PARSE-RESULT@@" + text + "\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]
    return 0


def main() -> int:
    """A fresh worker: the parse in a child, whose leftovers this process kills (see above)."""
    from spinner.reaper import become_subreaper, exit_as, supervise

    try:
        become_subreaper()
    except (OSError, AttributeError):  # no prctl: the worker is the parse, as it always was
        return _parse_and_print()
    return exit_as(supervise(_parse_and_print))


if __name__ == "__main__":
    raise SystemExit(main())
