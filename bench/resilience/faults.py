"""The faults, one per scenario. Each is injected once into a running stack and returns when the thing
it took away is back; what it did is a `Fault` record. They block (sleeps, process waits): the scenario
runs them in a thread while its observer keeps sampling.

| name | what |
|---|---|
| kill-<service> | kill -9 of standalone's executor, logs, gateway or dagsync child; standalone restarts it |
| kill-scheduler | kill -9 of the scheduler holding the lease, with a standby running; standalone restarts it |
| stop-scheduler | SIGSTOP of the leader for `stop_seconds`, then SIGCONT (a standby is running) |
| restart-db | kill -9 of the private MariaDB, started again on its port and datadir after `db_seconds` |
| stop-broker | kill of the private Mosquitto, started again after `broker_seconds` |
| stop-s3 | the S3 server stopped for `s3_seconds`, then started on the same port |
| restart-standalone | standalone stopped (SIGTERM, as Ctrl-C) and started again on its port `restart_seconds` later |
| stop-k8s | pod backend only: the Kubernetes API server stopped for `k8s_seconds`, then started on its port (pods run on) |
| none | nothing: the baseline |

The pod backend's default list is POD_FAULTS: what tells whether pods outlive the executor and are
adopted (kill-executor, restart-standalone), whether reports wait a database outage out (restart-db),
and whether the executor waits out an API server outage (stop-k8s).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.resilience import processes
from bench.resilience.servers import S3, Kubernetes, MariaDB, Mosquitto
from bench.resilience.stack import Standalone
from bench.resilience.workload import PARTITION

SCHEDULER_FAULTS = ("kill-scheduler", "stop-scheduler")
FAULTS = (
    "kill-executor", "kill-scheduler", "kill-logs", "kill-gateway", "kill-dagsync", "restart-db", "stop-broker",
    "stop-s3", "stop-scheduler", "restart-standalone",
)  # fmt: skip
POD_ONLY = ("stop-k8s",)
POD_FAULTS = ("kill-executor", "restart-db", "restart-standalone", "stop-k8s")
ALL = ("none", *FAULTS, *POD_ONLY)


@dataclass(frozen=True)
class Durations:
    db_seconds: float = 7.0
    broker_seconds: float = 10.0
    s3_seconds: float = 10.0
    stop_seconds: float = 20.0
    restart_seconds: float = 3.0
    k8s_seconds: float = 10.0


@dataclass
class Fault:
    name: str
    started: float = 0.0  # time.time() when it was injected
    back: float = 0.0  # when the thing it took away was back (== started for a kill the supervisor answers)
    victim: str = ""  # which process, for the report
    leader: str | None = None  # scheduler faults: the lease holder at the fault, and its epoch
    epoch: int | None = None
    standby_pid: int | None = None  # the standby running at the fault
    pods_running: int | None = None  # pod backend: pods pending or running just before the fault
    notes: list[str] = field(default_factory=list)

    @property
    def outage(self) -> float:
        return self.back - self.started


@dataclass
class Target:
    """What a fault may touch."""

    stack: Standalone
    db: MariaDB
    broker: Mosquitto
    s3: S3
    lease: Callable[[], tuple[str | None, int | None]]  # the current holder and epoch
    durations: Durations
    k8s: Kubernetes | None = None  # the pod backend's API server


def inject(name: str, target: Target) -> Fault:
    fault = Fault(name)
    if target.k8s is not None:
        fault.pods_running = target.k8s.live_pods()
    if name == "none":
        fault.started = fault.back = time.time()
    elif name.startswith("kill-") and name != "kill-scheduler":
        _kill_child(name.removeprefix("kill-"), target, fault)
    elif name in SCHEDULER_FAULTS:
        _leader(name, target, fault)
    elif name == "restart-db":
        _away(fault, target.db.kill, target.durations.db_seconds, target.db.start)
    elif name == "stop-broker":
        _away(fault, target.broker.kill, target.durations.broker_seconds, target.broker.start)
    elif name == "stop-s3":
        _away(fault, target.s3.stop, target.durations.s3_seconds, target.s3.start)
    elif name == "stop-k8s":
        if target.k8s is None:
            raise ValueError("stop-k8s needs the pod backend (--backend kubernetes)")
        _away(fault, target.k8s.stop, target.durations.k8s_seconds, target.k8s.start)
    elif name == "restart-standalone":
        fault.started = time.time()
        fault.back = target.stack.restart(target.durations.restart_seconds)
    else:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(ALL)}")
    return fault


def _kill_child(service: str, target: Target, fault: Fault) -> None:
    pid = target.stack.wait_child(service)
    fault.victim = f"{service} (pid {pid})"
    fault.started = time.time()
    processes.signal_pid(pid, signal.SIGKILL)
    target.stack.wait_child(service, other_than=pid)  # standalone restarted it
    fault.back = time.time()
    fault.notes.append(f"restarted by standalone after {fault.outage:.1f} s")


def _leader(name: str, target: Target, fault: Fault) -> None:
    holder, epoch = target.lease()
    if holder is None:
        raise RuntimeError("no scheduler holds the partition's lease")
    pid = int(holder.split(":")[1])  # host:pid:random (services/scheduler/__main__.py)
    standby = target.stack.standby
    is_standby = standby is not None and standby.pid == pid
    fault.leader, fault.epoch = holder, epoch
    fault.standby_pid = standby.pid if standby is not None else None
    who = "the standby" if is_standby else "standalone's scheduler"
    fault.victim = f"{who} (pid {pid}, epoch {epoch})"
    if name == "kill-scheduler":
        fault.started = time.time()
        processes.signal_pid(pid, signal.SIGKILL)
        if is_standby:  # nobody supervises it but us: start another, as standalone would
            assert standby is not None
            standby.wait(10)
            target.stack.start_standby(PARTITION)
        else:
            target.stack.wait_child("scheduler", other_than=pid)
        fault.back = time.time()
    else:
        fault.started = time.time()
        processes.signal_pid(pid, signal.SIGSTOP)
        time.sleep(target.durations.stop_seconds)
        processes.signal_pid(pid, signal.SIGCONT)
        fault.back = time.time()


def _away(fault: Fault, take: Callable[[], None], seconds: float, bring_back: Callable[[], None]) -> None:
    """A server taken away for `seconds`, then brought back: the fault's start and end are recorded."""
    fault.started = time.time()
    take()
    time.sleep(seconds)
    bring_back()
    fault.back = time.time()
