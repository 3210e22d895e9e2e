"""Rendering a task's templated fields: the DAG's Jinja environment, template files, and what is kept of it.

A templated field whose value ends with one of the operator's `template_ext` (BashOperator:
.sh, .bash) names a template file: it is looked up in the DAG file's folder, then in the DAG's
`template_searchpath` (relative entries are relative to the DAG file's folder), and rendered.
Files must lie inside the DAG snapshot: a name or search path that leads outside it is refused.
The DAG's `user_defined_macros` are globals, its `user_defined_filters` filters, and
`render_template_as_native_obj=True` renders with jinja2.nativetypes (`"{{ params.n }}"` gives an int).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.nativetypes

if TYPE_CHECKING:
    from spinner.sdk.dag import DAG
    from spinner.sdk.operators.base import BaseOperator

# A rendered field is kept (table rendered_task_instance_fields) up to this many characters.
MAX_FIELD_CHARS = 16_384


class TemplateRenderError(Exception):
    """A templated field could not be rendered; the message names the DAG, the task and the field."""


class TemplateFileNotFound(jinja2.TemplateNotFound):
    def __init__(self, name: str, tried: Sequence[str]) -> None:
        super().__init__(name, f"template file {name!r} not found; tried {', '.join(tried) or 'no folder'}")
        self.tried = list(tried)


class TemplateOutsideSnapshot(jinja2.TemplateNotFound):
    def __init__(self, name: str, path: Path, root: Path) -> None:
        super().__init__(name, f"template file {name!r} resolves to {path}, outside the DAG snapshot {root}: refused")


class SnapshotLoader(jinja2.BaseLoader):
    """Loads template files from search folders, never from outside the snapshot root (symlinks included)."""

    def __init__(self, searchpath: Sequence[Path], root: Path) -> None:
        self.root = root.resolve()
        self.searchpath = [p if p.is_absolute() else self.root / p for p in searchpath]

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        tried: list[str] = []
        for base in self.searchpath:
            candidate = (base / template).resolve()
            if not candidate.is_relative_to(self.root):
                raise TemplateOutsideSnapshot(template, candidate, self.root)
            tried.append(str(candidate))
            if candidate.is_file():
                return candidate.read_text(), str(candidate), None  # one render per try: no reload check
        raise TemplateFileNotFound(template, tried)


def search_folders(dag: DAG) -> list[Path]:
    folder = Path(dag.fileloc).resolve().parent if dag.fileloc else Path.cwd()
    return [folder, *((folder / p) for p in dag.template_searchpath)]


def dag_environment(dag: DAG | None, snapshot_root: Path | None = None) -> jinja2.Environment:
    """The Jinja environment a DAG's tasks render with (StrictUndefined unless the DAG says otherwise)."""
    if dag is None:
        from spinner.sdk.templating import make_env

        return make_env()
    folders = search_folders(dag)
    root = snapshot_root if snapshot_root is not None else folders[0]
    cls = jinja2.nativetypes.NativeEnvironment if dag.render_template_as_native_obj else jinja2.Environment
    env = cls(
        undefined=dag.template_undefined or jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        loader=SnapshotLoader(folders, root),
    )
    env.globals.update(dag.user_defined_macros)
    env.filters.update(dag.user_defined_filters)
    return env


def render_field(value: Any, context: dict[str, Any], env: jinja2.Environment, template_ext: Sequence[str]) -> Any:
    """Renders strings (a template file when the string ends with a template_ext), through lists,
    tuples and dicts; other values as they are. An XComArg or a @dag param gives its value in this run."""
    from spinner.sdk.xcom_arg import Resolvable

    if isinstance(value, Resolvable):
        return value.resolve(context)
    if isinstance(value, str):
        if template_ext and value.endswith(tuple(template_ext)):
            return env.get_template(value).render(**context)
        return env.from_string(value).render(**context)
    if isinstance(value, list):
        return [render_field(v, context, env, template_ext) for v in value]
    if isinstance(value, tuple):
        return tuple(render_field(v, context, env, template_ext) for v in value)
    if isinstance(value, dict):
        return {k: render_field(v, context, env, template_ext) for k, v in value.items()}
    return value


def render_task_fields(task: BaseOperator, context: dict[str, Any], env: jinja2.Environment | None = None) -> None:
    """Renders every templated field of the task in place; a failure names the field."""
    env = env or dag_environment(task.dag)
    ext = tuple(task.template_ext)
    for name in task.template_fields:
        where = f"DAG '{task.dag.dag_id if task.dag else '?'}', task '{task.task_id}', field '{name}'"
        try:
            rendered = render_field(getattr(task, name), context, env, ext)
        except jinja2.UndefinedError as e:  # the same type as before, with where it happened
            raise jinja2.UndefinedError(f"{where}: {e}") from e
        except (jinja2.TemplateError, OSError) as e:
            raise TemplateRenderError(f"{where}: rendering failed: {type(e).__name__}: {e}") from e
        setattr(task, name, rendered)


# Values under keys like these are kept as "***" (Airflow's sensitive field names), e.g. env={"DB_PASSWORD": ...}.
SENSITIVE_KEYS = ("password", "passwd", "secret", "token", "api_key", "apikey", "access_key", "private_key",
                  "authorization")  # fmt: skip
REDACTED = "***"


def redact(value: Any) -> Any:
    """The value with what sensitive-looking keys hold replaced, through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if any(word in str(k).lower() for word in SENSITIVE_KEYS) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _truncate(value: Any, limit: int) -> Any:
    text = json.dumps(value, default=str)
    if len(text) <= limit:
        return json.loads(text)
    shown = value if isinstance(value, str) else text
    return f"Truncated: the rendered value has {len(text)} characters; the first {limit} follow.\n{shown[:limit]}"


def rendered_fields(task: BaseOperator, limit: int = MAX_FIELD_CHARS) -> dict[str, Any]:
    """The task's templated fields as JSON values, sensitive keys redacted, each cut at `limit` characters:
    what a try stores and the UI shows."""
    return {
        name: REDACTED
        if any(w in name.lower() for w in SENSITIVE_KEYS)
        else _truncate(redact(getattr(task, name, None)), limit)
        for name in task.template_fields
    }
