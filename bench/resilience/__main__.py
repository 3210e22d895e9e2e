"""Fault suite (issue 13): one fault per scenario on real processes, then every run, try and execution counted.

    python -m bench.resilience [--backend local,kubernetes] [--faults kill-executor,restart-db,...]
                               [--retries 0,1] [--runs 40] [--tasks 8] [--at 0.4] [--task-seconds 1.5]
                               [--no-s3] [--write-docs] [--keep] [--json]

Each scenario starts a MariaDB, a Mosquitto and an S3 API (moto) of its own, `spinner standalone` on
them over one generated DAG (a chain of --tasks BashOperator tasks, each writing a line to a record of
its own when it starts and when its command ends), triggers --runs runs through the REST API, waits
until --at of the tasks are done, injects ONE fault (bench/resilience/faults.py), waits for every run
to end (--deadline) and counts: runs ended success / failed, tries (task_instance and its history),
executions (the records), lost tries (never ended), repeated executions of a command that had run to
its end, tries recorded as failed whose command had ended, the recovery time and the logs marked
complete (and archived in S3). `--write-docs` writes the tables into docs/resilience.md. With --json
the last line is one JSON object: {"machine": ..., "commit": ..., "scenarios": [...]}.

--backend runs the scenarios once per executor backend: local (a process per try) and kubernetes
(a pod per try on the Kubernetes test double, tests/fakes/kubernetes.py, whose pods are local
processes that outlive the executor). Without --faults each backend runs its own default list
(every fault on local; kill-executor, restart-db, restart-standalone and stop-k8s on pods); a given
--faults runs on every backend it applies to (stop-k8s only on pods). Each backend's tables go between
markers of their own in docs/resilience.md, so a run of one backend keeps the other's results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import describe as describe_machine
from bench.resilience import report
from bench.resilience.faults import ALL, FAULTS, POD_FAULTS, POD_ONLY, Durations
from bench.resilience.scenario import Options, run, say
from bench.resilience.workload import Workload


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.resilience", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--backend", default="local,kubernetes", help="executor backends, comma separated: local, kubernetes"
    )
    p.add_argument(
        "--faults",
        default="",
        help=f"comma separated, in order (default: each backend's own list); known: {', '.join(ALL)}",
    )
    p.add_argument("--retries", default="0,1", help="task retries, comma separated: each fault runs once per value")
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--tasks", type=int, default=8, help="tasks per run (a chain); the issue's trial had 15")
    p.add_argument("--at", type=float, default=0.4, help="fraction of the tasks done when the fault is injected")
    p.add_argument("--task-seconds", type=float, default=1.5, help="how long each task's command sleeps")
    p.add_argument("--retry-delay", type=float, default=2.0, help="seconds before a failed try is retried")
    p.add_argument("--deadline", type=float, default=900, help="seconds after the fault for every run to end")
    p.add_argument("--db-seconds", type=float, default=7.0, help="restart-db: MariaDB is away this long")
    p.add_argument("--broker-seconds", type=float, default=10.0, help="stop-broker: Mosquitto is away this long")
    p.add_argument("--s3-seconds", type=float, default=10.0, help="stop-s3: the S3 server is away this long")
    p.add_argument("--stop-seconds", type=float, default=20.0, help="stop-scheduler: the leader is stopped this long")
    p.add_argument(
        "--restart-seconds", type=float, default=3.0, help="restart-standalone: seconds between stop and start"
    )
    p.add_argument("--k8s-seconds", type=float, default=10.0, help="stop-k8s: the API server is away this long")
    p.add_argument("--no-s3", action="store_true", help="no S3 log archive (stop-s3 then changes nothing)")
    p.add_argument("--write-docs", action="store_true", help="write the results into docs/resilience.md")
    p.add_argument("--keep", action="store_true", help="keep each scenario's folder (services' output, records)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    bad = [b for b in args.backend.split(",") if b not in BACKENDS]
    if bad:
        p.error(f"unknown backends {bad}; known: {', '.join(BACKENDS)}")
    unknown = [f for f in args.faults.split(",") if args.faults and f not in ALL]
    if unknown:
        p.error(f"unknown faults {unknown}; known: {', '.join(ALL)}")
    if args.faults and not any(faults_for(b, args.faults) for b in args.backend.split(",")):
        p.error(f"none of {args.faults} runs on {args.backend} (stop-k8s needs --backend kubernetes)")
    return args


BACKENDS = ("local", "kubernetes")


def faults_for(backend: str, given: str) -> list[str]:
    """The faults a backend runs: the given ones it applies to, or its default list."""
    if not given:
        return list(POD_FAULTS if backend == "kubernetes" else FAULTS)
    return [f for f in given.split(",") if backend == "kubernetes" or f not in POD_ONLY]


def commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return done.stdout.strip() + ("+changes" if dirty else "")


NEEDED = ("mariadb-install-db", "mariadbd", "mariadb", "mosquitto")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [name for name in NEEDED if shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin") is None]
    if missing:
        say(f"missing {', '.join(missing)}: install mariadb-server and mosquitto (apt-get; `make test` does, as root)")
        return 2
    machine = describe_machine()
    say(f"machine: {machine}")
    durations = Durations(args.db_seconds, args.broker_seconds, args.s3_seconds, args.stop_seconds,
                          args.restart_seconds, args.k8s_seconds)  # fmt: skip
    scenarios: list[dict[str, Any]] = []
    started = time.monotonic()
    serial = 0
    for backend in args.backend.split(","):
        for fault in faults_for(backend, args.faults):
            for retries in (int(r) for r in args.retries.split(",")):
                serial += 1
                workload = Workload(args.runs, args.tasks, retries, args.task_seconds, args.retry_delay)
                options = Options(workload, args.at, durations, args.deadline, not args.no_s3, args.keep, backend)
                result = asyncio.run(run(fault, options, serial))
                scenarios.append(result)
                print(f"{backend} {fault} retries={retries}: {json.dumps(result)}", flush=True)
    results = {
        "machine": machine,
        "commit": commit(),
        "wall_s": round(time.monotonic() - started, 1),
        "options": {k: v for k, v in vars(args).items() if k not in ("json", "write_docs", "keep")},
        "scenarios": scenarios,
    }
    say(f"suite done in {results['wall_s']:.0f} s")
    print(report.tables(results), file=sys.stderr)
    if args.write_docs:
        report.write(ROOT / "docs" / "resilience.md", results)
        say("wrote docs/resilience.md")
    if args.json:
        print(json.dumps(results))
    return 1 if any(s.get("error") or s.get("leaked") for s in scenarios) else 0


if __name__ == "__main__":
    raise SystemExit(main())
