"""Errors of the authoring SDK, and the exceptions task code raises to steer its outcome."""

from __future__ import annotations


class DagDefinitionError(ValueError):
    """A DAG or task is defined wrongly. The message always names the DAG (and the task)."""


class SkipTask(Exception):
    """Raised by task code: end this try as skipped."""


class FailNoRetry(Exception):
    """Raised by task code: fail this try and do not retry it."""
