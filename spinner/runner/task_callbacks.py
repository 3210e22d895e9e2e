"""A try's callbacks and emails, run by the task runner after the executor recorded the try's end.

`on_execute_callback` runs just before `execute`; the others after Finish answered with the end
state (success, failed, up_for_retry, skipped), so a slow or failing callback never changes the
try's state or duration. Everything goes to the try's log. Emails (`email` with
`email_on_failure` / `email_on_retry`) are sent by the executor (RunnerService.SendNotification).
"""

from __future__ import annotations

import html
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from spinner.sdk.callbacks import CALLBACK_OF_STATE, run_callbacks

if TYPE_CHECKING:
    from spinner.sdk.operators import BaseOperator


# After the try's end nothing else bounds the runner: a callback that hangs is stopped after this long.
AFTER_END_LIMIT = 300.0


class CallbacksTimedOut(BaseException):  # not an Exception: a callback cannot swallow it
    pass


def _timed_out(signum: int, frame: FrameType | None) -> None:
    raise CallbacksTimedOut()


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM after `seconds` (main thread only, where the runner calls callbacks)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class TaskCallbacks:
    def __init__(self, say: Callable[[str], None], limit: float = AFTER_END_LIMIT) -> None:
        self._say = say
        self._limit = limit
        self.task: BaseOperator | None = None
        self.context: dict[str, Any] = {}

    def loaded(self, task: BaseOperator, context: dict[str, Any]) -> None:
        """The task and its rendered context, known once the DAG file is loaded."""
        self.task = task
        self.context = context

    def executing(self) -> None:
        if self.task is not None and self.task.on_execute_callback:
            run_callbacks(self.task.on_execute_callback, self.context, self._say, "on_execute_callback")

    def ended(self, state: str, error: str = "", exception: BaseException | None = None) -> None:
        """After the executor recorded the end: the state's callbacks, then the email, each failure logged;
        all of it stopped (and logged) after the time limit."""
        try:
            with time_limit(self._limit):
                self._ended(state, error, exception)
        except CallbacksTimedOut:
            self._say(f"callbacks after the try's end took over {self._limit:g} s and were stopped")

    def _ended(self, state: str, error: str, exception: BaseException | None) -> None:
        task = self.task
        if task is None:  # the DAG file never loaded: there is no task whose callbacks could run
            return
        context = {**self.context, "state": state, "reason": error, "exception": exception}
        name = CALLBACK_OF_STATE.get(state)
        callbacks = getattr(task, name, ()) if name else ()
        if callbacks and name:
            run_callbacks(callbacks, context, self._say, name)
        wants = (state == "failed" and task.email_on_failure) or (state == "up_for_retry" and task.email_on_retry)
        if task.email and wants:
            self._email(task, context, state, error)

    def _email(self, task: BaseOperator, context: dict[str, Any], state: str, error: str) -> None:
        from spinner.sdk.notifiers import send_email

        ti = context.get("ti")
        try_number = getattr(ti, "try_number", "?")
        map_index = int(getattr(ti, "map_index", -1))
        instance = f"[{map_index}]" if map_index >= 0 else ""  # which instance of a mapped task
        what = "failed" if state == "failed" else "failed and will be retried"
        dag_id = task.dag.dag_id if task.dag else "?"
        subject = f"Spinner alert: {dag_id}.{task.task_id}{instance} try {try_number} {what}"
        body = (
            f"<p>Task <b>{html.escape(task.task_id + instance)}</b> of DAG <b>{html.escape(dag_id)}</b>, run "
            f"{html.escape(str(context.get('run_id', '')))}, try {try_number} {what}.</p>"
            f"<pre>{html.escape(error)}</pre>"
        )
        try:
            message_id = send_email(list(task.email), subject, body)
            self._say(f"email sent to {', '.join(task.email)} ({message_id})")
        except Exception as e:
            detail = e.details() if hasattr(e, "details") else str(e)
            self._say(f"could not send the email to {', '.join(task.email)}: {detail}")
            print(traceback.format_exc(), end="", flush=True)
