"""Regenerates the protobuf and gRPC code in spinner/v1 from protos/spinner/v1.

Usage: python scripts/gen_protos.py [--out DIR]
The output is committed; tests/unit/test_protos_fresh.py fails when it is stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def generate(out_root: Path) -> list[Path]:
    """Writes generated modules under out_root/spinner/v1 and returns their paths."""
    protos = sorted(PROTO_ROOT.glob("spinner/v1/*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out_dir = out_root / "spinner" / "v1"
    (out_dir / "__init__.py").write_text('"""Generated protobuf and gRPC code: never edit, run `make protos`."""\n')
    return sorted(out_dir.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None, help="output root (default: the repository)")
    args = parser.parse_args()
    if args.out is not None:
        generate(args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
        target = ROOT / "spinner" / "v1"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, target / f.name)
    print(f"generated {len(files)} files in {target.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
