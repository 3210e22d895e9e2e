"""Who may call which internal method: the whole matrix in one table, read by every service's server.

The gateway acts for users it has already authorised (it says which); the scheduler hands tries to
the executor; the executor asks schedulers for the runs a task triggers (TriggerDagRunOperator);
task runners use only the runner API, each request with its own try's runner token. Nothing else
is allowed, and a method not named here is refused (spinner/rpcauth.py).
"""

from __future__ import annotations

from spinner.rpcauth import RUNNER, Policy, allow

_SCHEDULER = "/spinner.v1.SchedulerService/"
_EXECUTOR = "/spinner.v1.ExecutorService/"
_RUNNER = "/spinner.v1.RunnerService/"
_LOGS = "/spinner.v1.LogsService/"
_DAGSYNC = "/spinner.v1.DagSyncService/"

SCHEDULER: Policy = {
    _SCHEDULER + "TriggerDagRun": allow("gateway", "executor"),
    _SCHEDULER + "Wake": allow("gateway", "dagsync"),
    _SCHEDULER + "GetStatus": allow("gateway"),
    _SCHEDULER + "ClearTaskInstances": allow("gateway", "executor"),  # and TriggerDagRunOperator(reset_dag_run=True)
    _SCHEDULER + "MarkTaskInstances": allow("gateway"),
    _SCHEDULER + "SetPaused": allow("gateway"),
    _SCHEDULER + "Backfill": allow("gateway"),
}

RUNNER_METHODS = (
    "Start", "Heartbeat", "Finish", "SetRenderedFields", "PushXCom", "PullXCom", "TriggerDagRun", "GetDagRun",
    "GetVariable", "GetConnection", "GetTaskState", "SendNotification", "FinishCallback",
)  # fmt: skip

EXECUTOR: Policy = {
    _EXECUTOR + "Submit": allow("scheduler"),
    _EXECUTOR + "SubmitMany": allow("scheduler"),
    _EXECUTOR + "GetStatus": allow("scheduler", "gateway"),
    _EXECUTOR + "RunCallback": allow("scheduler"),
    **{_RUNNER + name: RUNNER for name in RUNNER_METHODS},
}

LOGS: Policy = {
    _LOGS + "Read": allow("gateway"),
    _LOGS + "Follow": allow("gateway"),
}

DAGSYNC: Policy = {
    _DAGSYNC + "GetSnapshot": allow("gateway", "scheduler", "executor"),
    _DAGSYNC + "SyncNow": allow("gateway"),
}
