"""The generated code in spinner/v1 must match protos/: `make protos` regenerates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "spinner" / "v1"


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"scripts/gen_protos.py failed:\n{result.stderr}"
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "spinner" / "v1").iterdir() if p.is_file()}
    committed = {p.name: p.read_bytes() for p in COMMITTED.iterdir() if p.is_file()}
    assert any(name.endswith("_pb2.py") for name in fresh), "gen_protos.py generated no modules"
    missing, extra = sorted(fresh.keys() - committed.keys()), sorted(committed.keys() - fresh.keys())
    assert not missing and not extra, (
        f"spinner/v1 lacks {missing} and has stray {extra}: run `make protos` and commit the result"
    )
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not stale, f"stale generated code in spinner/v1 {stale}: run `make protos` and commit the result"


def test_every_service_has_a_proto() -> None:
    protos = {p.stem for p in (ROOT / "protos" / "spinner" / "v1").glob("*.proto")}
    assert {"common", "scheduler", "executor", "dagsync", "logs", "gateway"} <= protos
