"""`spinner variables ...` and `spinner connections ...`: get, set, delete, list, import, export (Admin).

They speak to the gateway's REST API like the other client commands; import and export files are
JSON: variables as {"key": "value"}, connections as {"conn_id": {fields}} or {"conn_id": "uri"}.
A value given as "-" is read from standard input (it stays out of the shell history and `ps`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spinner.cli.client_commands import CliError, _guard, _q, _request, _table

CONN_FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")


def _stdin_or(value: str) -> str:
    return sys.stdin.read().rstrip("\n") if value == "-" else value


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise CliError(f"{path} is not valid JSON: {e}") from None


def _write_json(path: str, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        target = Path(path)
        target.touch(mode=0o600, exist_ok=True)  # secrets: readable by its owner only
        target.write_text(text)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None


# --- variables -------------------------------------------------------------------------------


def variables_list(args: argparse.Namespace) -> int:
    body = _request(args, "GET", "/variables")
    rows = [[v["key"], v["description"], (v["updated_at"] or "")[:19], v["updated_by"]] for v in body["variables"]]
    print(_table(rows, ["key", "description", "updated", "by"]))
    return 0


def variables_get(args: argparse.Namespace) -> int:
    v = _request(args, "GET", f"/variables/{_q(args.key)}")
    value = v["value"]
    if args.json:
        try:
            value = json.dumps(json.loads(value), indent=2)
        except ValueError:
            raise CliError(f"variable {args.key} is not JSON") from None
    print(value)
    return 0


def variables_set(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"value": _stdin_or(args.value)}
    if args.description is not None:
        body["description"] = args.description
    result = _request(args, "PUT", f"/variables/{_q(args.key)}", json=body)
    print(f"{'created' if result['created'] else 'updated'} variable {args.key}")
    return 0


def variables_delete(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"/variables/{_q(args.key)}")
    print(f"deleted variable {args.key}")
    return 0


def variables_import(args: argparse.Namespace) -> int:
    data = _read_json(args.file)
    if not isinstance(data, dict):
        raise CliError(f'{args.file} must hold a JSON object of key: value, like {{"env": "prod"}}')
    result = _request(args, "POST", "/variables", json={"variables": data, "on_existing": args.on_existing})
    print(f"imported {len(result['imported'])} variable(s); skipped {len(result['skipped'])} that exist")
    return 0


def variables_export(args: argparse.Namespace) -> int:
    body = _request(args, "GET", "/variables", params={"include_values": "true"})
    data = {v["key"]: v["value"] for v in body["variables"]}
    _write_json(args.file, data)
    if args.file != "-":
        print(f"exported {len(data)} variable(s) to {args.file}")
    return 0


# --- connections -----------------------------------------------------------------------------


def connections_list(args: argparse.Namespace) -> int:
    body = _request(args, "GET", "/connections")
    rows = [
        [c["conn_id"], c["conn_type"], c["host"], str(c["port"] or ""), c["schema"], c["login"],
         "yes" if c["has_password"] else "no"]
        for c in body["connections"]
    ]  # fmt: skip
    print(_table(rows, ["conn_id", "type", "host", "port", "schema", "login", "password"]))
    return 0


def connections_get(args: argparse.Namespace) -> int:
    c = _request(args, "GET", f"/connections/{_q(args.conn_id)}")
    if args.uri:
        print(c["uri"])
    else:
        print(json.dumps({k: c[k] for k in ("conn_id", *CONN_FIELDS)}, indent=2))
    return 0


def connections_set(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in CONN_FIELDS if getattr(args, k) is not None}
    body: dict[str, Any]
    if args.uri is not None:
        if set(given) - {"description"}:
            raise CliError("give either --uri or the fields (--conn-type, --host, ...), not both")
        body = {"uri": _stdin_or(args.uri), **given}
    else:
        if "conn_type" not in given:
            raise CliError("give --uri URI, or the fields with at least --conn-type")
        body = given
        if body.get("password") == "-":
            body["password"] = _stdin_or("-")
        if "extra" in body:
            try:
                body["extra"] = json.loads(body["extra"])
            except ValueError as e:
                raise CliError(f"--extra is not valid JSON: {e}") from None
    result = _request(args, "PUT", f"/connections/{_q(args.conn_id)}", json=body)
    print(f"{'created' if result['created'] else 'updated'} connection {args.conn_id}")
    return 0


def connections_delete(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"/connections/{_q(args.conn_id)}")
    print(f"deleted connection {args.conn_id}")
    return 0


def connections_import(args: argparse.Namespace) -> int:
    data = _read_json(args.file)
    if not isinstance(data, dict):
        raise CliError(
            f'{args.file} must hold a JSON object of conn_id: URI or fields, like {{"db": "postgres://h/d"}}'
        )
    result = _request(args, "POST", "/connections", json={"connections": data, "on_existing": args.on_existing})
    print(f"imported {len(result['imported'])} connection(s); skipped {len(result['skipped'])} that exist")
    return 0


def connections_export(args: argparse.Namespace) -> int:
    body = _request(args, "GET", "/connections", params={"include_secrets": "true"})
    data = {c["conn_id"]: {k: c[k] for k in CONN_FIELDS} for c in body["connections"]}
    _write_json(args.file, data)
    if args.file != "-":
        print(f"exported {len(data)} connection(s) to {args.file}")
    return 0


def register(sub: Any) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server", help="gateway URL (default $SPINNER_SERVER or http://127.0.0.1:8080)")
    server.add_argument("--token", help="API token (default $SPINNER_TOKEN, else the one `spinner login` saved)")
    on_existing = argparse.ArgumentParser(add_help=False)
    on_existing.add_argument(
        "--on-existing", choices=["overwrite", "skip", "fail"], default="overwrite",
        help="keys that exist already: replace them (default), leave them, or refuse the whole import",
    )  # fmt: skip

    variables = sub.add_parser("variables", help="variables tasks read (Admin)").add_subparsers(
        dest="variables_command", required=True
    )
    p = variables.add_parser("list", parents=[server], help="keys and descriptions (no values)")
    p.set_defaults(handler=_guard(variables_list))
    p = variables.add_parser("get", parents=[server], help="print a variable's value")
    p.add_argument("key")
    p.add_argument("--json", action="store_true", help="parse the value as JSON and print it indented")
    p.set_defaults(handler=_guard(variables_get))
    p = variables.add_parser("set", parents=[server], help="create or replace a variable")
    p.add_argument("key")
    p.add_argument("value", help="the value; - reads it from standard input")
    p.add_argument("--description")
    p.set_defaults(handler=_guard(variables_set))
    p = variables.add_parser("delete", parents=[server], help="delete a variable")
    p.add_argument("key")
    p.set_defaults(handler=_guard(variables_delete))
    p = variables.add_parser(
        "import", parents=[server, on_existing], help='set variables from a JSON file {"key": value}'
    )
    p.add_argument("file", help="a JSON file; - reads standard input")
    p.set_defaults(handler=_guard(variables_import))
    p = variables.add_parser("export", parents=[server], help="write every variable with its value to a JSON file")
    p.add_argument("file", help="the JSON file to write (mode 0600); - writes to standard output")
    p.set_defaults(handler=_guard(variables_export))

    connections = sub.add_parser("connections", help="connections tasks use (Admin)").add_subparsers(
        dest="connections_command", required=True
    )
    p = connections.add_parser("list", parents=[server], help="connections without passwords")
    p.set_defaults(handler=_guard(connections_list))
    p = connections.add_parser("get", parents=[server], help="print a connection's fields (with its password)")
    p.add_argument("conn_id")
    p.add_argument("--uri", action="store_true", help="print it as one URI")
    p.set_defaults(handler=_guard(connections_get))
    p = connections.add_parser("set", parents=[server], help="create or replace a connection from a URI or fields")
    p.add_argument("conn_id")
    p.add_argument("--uri", help="scheme://login:password@host:port/schema?extra_key=value; - reads stdin")
    p.add_argument("--conn-type", dest="conn_type", help="e.g. postgres, mysql, http, aws")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--schema")
    p.add_argument("--login")
    p.add_argument("--password", help="- reads it from standard input")
    p.add_argument("--extra", help="a JSON object")
    p.add_argument("--description")
    p.set_defaults(handler=_guard(connections_set))
    p = connections.add_parser("delete", parents=[server], help="delete a connection")
    p.add_argument("conn_id")
    p.set_defaults(handler=_guard(connections_delete))
    p = connections.add_parser("import", parents=[server, on_existing], help="set connections from a JSON file")
    p.add_argument("file", help='{"conn_id": "uri" or {"conn_type": ..., "host": ...}}; - reads standard input')
    p.set_defaults(handler=_guard(connections_import))
    p = connections.add_parser("export", parents=[server], help="write every connection, passwords too, to a JSON file")
    p.add_argument("file", help="the JSON file to write (mode 0600); - writes to standard output")
    p.set_defaults(handler=_guard(connections_export))
