"""`spinner standalone` gives its services the ports they had in its last start on the same home, so
runners that outlive a clean stop (kept local tries, pods) reach the next executor at their address."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from spinner.standalone import PORTS_FILE, service_ports

NAMES = ["dagsync", "executor", "logs", "gateway_grpc", "scheduler[spinner_tier_1_0]"]


def test_a_restart_on_the_same_home_keeps_every_port(tmp_path: Path) -> None:
    first = service_ports(tmp_path, NAMES)
    assert sorted(first) == sorted(NAMES)
    assert len(set(first.values())) == len(NAMES)
    assert service_ports(tmp_path, NAMES) == first
    assert json.loads((tmp_path / PORTS_FILE).read_text()) == first


def test_a_saved_port_someone_else_took_is_replaced(tmp_path: Path) -> None:
    first = service_ports(tmp_path, NAMES)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", first["executor"]))
        other.listen(1)
        again = service_ports(tmp_path, NAMES)
    assert again["executor"] != first["executor"]
    assert {k: v for k, v in again.items() if k != "executor"} == {k: v for k, v in first.items() if k != "executor"}
    assert service_ports(tmp_path, NAMES)["executor"] == again["executor"]  # the new one is kept from now on


def test_a_damaged_or_foreign_file_gives_new_ports(tmp_path: Path) -> None:
    for text in ("not json", json.dumps([1, 2]), json.dumps({"executor": "x", "logs": 70000, "dagsync": 0})):
        (tmp_path / PORTS_FILE).write_text(text)
        ports = service_ports(tmp_path, NAMES)
        assert all(0 < port < 65536 for port in ports.values())
        assert len(set(ports.values())) == len(NAMES)
