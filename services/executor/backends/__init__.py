"""Executor backends: where a task try's runner process lives (local process now, pods in issue 4)."""
