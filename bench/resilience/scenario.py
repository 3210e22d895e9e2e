"""One scenario: its own MariaDB, Mosquitto and S3, `spinner standalone` over a generated DAG, N runs
triggered through the REST API, ONE fault at a fraction of the work done, then the counts. Everything
it started is stopped at the end, on failure too, and what is still running of it is reported.

On the pod backend (`backend="kubernetes"`) the scenario also starts the Kubernetes test double
(servers.Kubernetes) and gives standalone the settings that make its executor run every try as a pod
there (SPINNER_BACKEND, SPINNER_K8S_KUBECONFIG, SPINNER_K8S_PYTHON); the runners in the pods archive
their logs to the scenario's S3 bucket, which is where a pod's log is complete."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.pool import NullPool

from bench.resilience import processes
from bench.resilience.counts import count, longest_idle, read_tries
from bench.resilience.faults import SCHEDULER_FAULTS, Durations, Fault, Target, inject
from bench.resilience.observe import Observer
from bench.resilience.servers import S3, Kubernetes, MariaDB, Mosquitto
from bench.resilience.stack import Standalone, base_env
from bench.resilience.workload import PARTITION, Api, Workload, read_records
from spinner.db.engine import create_engine
from spinner.db.migrate import upgrade

LOGS_PREFIX = "logs"


@dataclass(frozen=True)
class Options:
    workload: Workload
    fraction: float  # of the tasks done when the fault is injected
    durations: Durations
    deadline: float  # seconds after the fault for every run to end
    s3: bool  # archive logs to S3 (moto)
    keep: bool  # keep the scenario's folder (its services' output)
    backend: str = "local"  # the executor's: local (a process per try) or kubernetes (a pod per try)
    settle: float = 30.0  # seconds after the last run ended for the last logs to be closed


def say(msg: str) -> None:
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def run(name: str, options: Options, serial: int) -> dict[str, Any]:
    w = options.workload
    pods = options.backend == "kubernetes"
    tag = "-pods" if pods else ""
    work = Path(tempfile.mkdtemp(prefix=f"spinner-resilience{tag}-{name}-r{w.retries}-"))
    db, broker, s3 = MariaDB(work / "mariadb"), Mosquitto(work / "mosquitto"), S3()
    k8s = Kubernetes(work / "kubernetes") if pods else None
    bucket = f"spinner-logs-{serial}-{int(time.time())}"
    started = time.monotonic()
    result: dict[str, Any] = {
        "backend": options.backend, "fault": name, "retries": w.retries, "runs": w.runs, "tasks": w.total,
    }  # fmt: skip
    who = f"{name}{' pods' if pods else ''} r{w.retries}"
    stack: Standalone | None = None
    engine = None
    stop = asyncio.Event()
    observing: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(db.start)
        await asyncio.to_thread(db.create_database)
        await asyncio.to_thread(broker.start)
        env = {"SPINNER_DATABASE_URL": db.url}
        if options.s3:
            await asyncio.to_thread(s3.start)
            await asyncio.to_thread(s3.create_bucket, bucket)
            env |= {
                "SPINNER_LOGS_BUCKET": bucket,
                "SPINNER_LOGS_PREFIX": LOGS_PREFIX,
                "SPINNER_S3_ENDPOINT_URL": s3.endpoint,
            }
            env |= S3.ACCESS
        if k8s is not None:
            await asyncio.to_thread(k8s.start)
            env |= {
                "SPINNER_BACKEND": "kubernetes",
                "SPINNER_K8S_KUBECONFIG": str(k8s.kubeconfig),
                "SPINNER_K8S_PYTHON": sys.executable,
            }
        engine = create_engine(db.url, poolclass=NullPool)
        await upgrade(engine)  # standalone would; done here so the observer has tables from the start
        w.write_dags(work / "dags", work / "records")
        stack = Standalone(dags=work / "dags", home=work / "home", output=work / "standalone.log",
                           env=base_env(**env), mqtt_url=broker.url)  # fmt: skip
        await asyncio.to_thread(stack.start)
        if name in SCHEDULER_FAULTS:
            stack.start_standby(PARTITION)
        api = Api(stack.url, stack.home)
        await asyncio.to_thread(api.wait_for_dag, 180)
        observer = Observer(engine, clock=time.time)
        observing = asyncio.create_task(observer.run(stop), name="observer")
        t0 = time.time()
        for run_id in w.run_ids():
            await asyncio.to_thread(api.trigger, run_id)
        say(f"{who}: {w.runs} runs triggered ({w.total} tasks); fault at {options.fraction:.0%}")
        at = await observer.wait(lambda s: s.done >= options.fraction * w.total, within=options.deadline)
        if at is None:
            raise RuntimeError(f"only {observer.last.done if observer.last else 0} tasks done before the fault point")
        last = observer.last
        holder_epoch = (last.holder, last.epoch) if last else (None, None)
        target = Target(stack, db, broker, s3, lambda: holder_epoch, options.durations, k8s)
        fault: Fault = await asyncio.to_thread(inject, name, target)
        say(f"{who}: injected at {at.done}/{w.total} done ({fault.victim or name}), back after "
            f"{fault.outage:.1f} s")  # fmt: skip
        ended = await observer.wait(lambda s: s.runs_ended >= w.runs, within=options.deadline)
        result["all_ended"] = ended is not None
        result["work_s"] = round((ended.at if ended else time.time()) - t0, 1)
        stop.set()
        await observing
        # A runner reports its end before it closes its log (archive, then marker): give the last ones time.
        settle = time.monotonic() + options.settle
        while True:
            runs, tries, unended = await read_tries(engine)
            archived = await asyncio.to_thread(s3.keys, bucket) if options.s3 else None
            counted = count(w, runs, tries, unended, work / "records", work / "home" / "logs", archived, LOGS_PREFIX)
            ended = counted["ended_tries"]
            whole = counted["logs_complete"] == ended and counted.get("logs_archived", ended) == ended
            if whole or time.monotonic() > settle:
                break
            await asyncio.sleep(1)
        result.update(counted)
        result.update(recovery(name, fault, observer, work / "records"))
        result["failed_db_reads"] = observer.failed_reads
        if k8s is not None:
            result["pods_created"] = len(await asyncio.to_thread(k8s.fake.created))
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        say(f"{who}: FAILED: {result['error']}")
    finally:
        stop.set()
        if observing is not None and not observing.done():
            observing.cancel()
        if stack is not None:
            await asyncio.to_thread(stack.stop)
            result["warnings"] = warnings(work)
        if engine is not None:
            await engine.dispose()
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(db.stop)
        if options.s3:
            await asyncio.to_thread(s3.stop)
        if k8s is not None:  # pods still running once standalone is stopped are leaks too; close() kills them
            result["pods_left_running"] = await asyncio.to_thread(k8s.live_pods)
            await asyncio.to_thread(k8s.close)
        result["leaked"] = await asyncio.to_thread(processes.reap_leftovers, work)
        result["wall_s"] = round(time.monotonic() - started, 1)
        if options.keep or result.get("error") or result["leaked"]:
            result["folder"] = str(work)
            await asyncio.to_thread(db.remove)  # the data files are big; the services' output is kept
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def recovery(name: str, fault: Fault, observer: Observer, records: Path) -> dict[str, Any]:
    """Scheduler faults: from the fault until someone else holds the lease, and until a try is queued
    again. Every other fault: the longest time in which no task started, from the fault and from the
    moment the thing taken away was back."""
    out: dict[str, Any] = {"fault_victim": fault.victim, "outage_s": round(fault.outage, 1)}
    if fault.pods_running is not None:
        out["pods_at_fault"] = fault.pods_running
    executions = read_records(records)
    out["idle_from_fault_s"] = _round(longest_idle(executions, fault.started))
    out["idle_after_back_s"] = _round(longest_idle(executions, fault.back))
    if name in SCHEDULER_FAULTS:
        takeover = observer.takeover_after(fault.started, fault.leader, fault.epoch)
        out["takeover_s"] = round(takeover.at - fault.started, 1) if takeover else None
        if takeover is not None and takeover.holder is not None:
            by_standby = takeover.holder.split(":")[1] == str(fault.standby_pid)
            out["taken_over_by"] = "the standby" if by_standby else "the restarted scheduler"
        queued = observer.first_queue_after(fault.started)
        out["first_queue_s"] = round(queued - fault.started, 1) if queued else None
        out["recovery_s"] = out["first_queue_s"]
    else:
        out["recovery_s"] = out["idle_after_back_s"]
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def warnings(work: Path) -> dict[str, int]:
    """The services' warnings and errors by kind (numbers and ids masked), most frequent first."""
    kinds: Counter[str] = Counter()
    for path in (work / "standalone.log", work / "standby.log"):
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if " WARNING " in line or " ERROR " in line or "exited (" in line:
                text = line.split(" ", 3)[-1] if " WARNING " in line or " ERROR " in line else line
                kinds[re.sub(r"[0-9a-f]{6,}|\d+(\.\d+)?|'[^']*'|\([^)]*\)", "_", text)[:160]] += 1
    return dict(kinds.most_common(10))
