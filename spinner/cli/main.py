"""`spinner` entry point: service commands (run a service) and client commands (talk to the gateway)."""

from __future__ import annotations

import argparse
import sys

from spinner.cli import client_commands, service_commands, varconn


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinner", description="Spinner workflow platform")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    service_commands.register(sub)
    client_commands.register(sub)
    varconn.register(sub)  # variables, connections
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        result: int = handler(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
