"""The generated code in spinner/v1 must match protos/: `make protos` regenerates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)], check=True)
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "spinner" / "v1").iterdir()}
    committed = {p.name: p.read_bytes() for p in (ROOT / "spinner" / "v1").iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "generated files differ in name: run `make protos`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}: run `make protos` and commit the result"


def test_every_service_has_a_proto() -> None:
    protos = {p.stem for p in (ROOT / "protos" / "spinner" / "v1").glob("*.proto")}
    assert {"scheduler", "executor", "dagsync", "logs", "gateway"} <= protos
