"""API tokens the CLI uses, by gateway URL, in <SPINNER_HOME>/credentials.json (mode 0600).

`spinner login` and `spinner standalone` write them; every client command reads the one
for its --server, unless --token or SPINNER_TOKEN says otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spinner.config import default_home


def home() -> Path:
    return Path(os.environ.get("SPINNER_HOME") or default_home())


def path(base: Path | None = None) -> Path:
    return (base or home()) / "credentials.json"


def _load(file: Path) -> dict[str, str]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def token_for(server: str, base: Path | None = None) -> str | None:
    return _load(path(base)).get(server.rstrip("/"))


def save(server: str, token: str, base: Path | None = None) -> Path:
    """Stores the token for this server; the file is readable by its owner only."""
    file = path(base)
    file.parent.mkdir(parents=True, exist_ok=True)
    data = _load(file)
    data[server.rstrip("/")] = token
    tmp = file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, file)
    return file
