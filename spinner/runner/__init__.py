"""The task runner: what a pod (or a local process) runs for one task try.

It never opens the database: it talks only to the executor's RunnerService, with a
token valid for its own try (environment variable SPINNER_RUNNER_TOKEN).
"""
