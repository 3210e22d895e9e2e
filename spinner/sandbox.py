"""Who DAG code runs as, and what a process of the platform hides from it (docs/adr/0010-trust-model.md).

A DAG file's parse gets a scrubbed environment and a working directory of its own (services/scheduler/
engine/parsing.py). Where the platform runs as root, that is not enough: root's DAG code could read
every file of the platform and the environment of every process. So a parse drops to the *DAG user*
(`dag_user`; by default `nobody`), which owns nothing of the platform. It still reads its DAG folder,
which may sit under a folder only root can enter (`/root/.spinner`), and imports from the interpreter's
folders (`/root/.pyenv`): the parse opens those folders as root and reaches them through
`/proc/self/fd/N`, which checks no folder above them (`PathViews`).

Where the platform does not run as root there is no other user to become; then every service marks
itself non-dumpable (`hide_process`), so a process of the same user (a parse, a task) cannot read its
environment or memory through /proc or ptrace.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

AUTO = "auto"  # nobody when running as root and the interpreter is reachable by it; else the platform's user
SAME = "same"  # DAG code runs as the platform's user (only the environment is scrubbed)
DEFAULT_DAG_USER = "nobody"
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


class SandboxError(Exception):
    """The configured DAG user cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class DagUser:
    name: str
    uid: int
    gid: int

    def spec(self) -> str:
        """As passed to a parse child: `uid:gid:name`."""
        return f"{self.uid}:{self.gid}:{self.name}"

    @classmethod
    def from_spec(cls, spec: str) -> DagUser | None:
        if not spec:
            return None
        uid, gid, name = spec.split(":", 2)
        return cls(name, int(uid), int(gid))


def _lookup(name: str) -> DagUser:
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        if name.isdigit():  # a bare uid with no passwd entry is fine: its own group of the same number
            return DagUser(name, int(name), int(name))
        raise SandboxError(f"dag_user {name!r}: no such user on this machine") from None
    return DagUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def reachable(path: Path, uid: int, gid: int) -> bool:
    """Whether `uid` (group `gid`, no others) may enter every folder down to `path` and read it."""

    def allowed(st: os.stat_result, bits: int) -> bool:
        if st.st_uid == uid:
            return bool(st.st_mode & (bits << 6))
        if st.st_gid == gid:
            return bool(st.st_mode & (bits << 3))
        return bool(st.st_mode & bits)

    try:
        path = path.resolve()
        for parent in reversed(path.parents):
            if not allowed(os.stat(parent), 0o1):
                return False
        st = os.stat(path)
    except OSError:
        return False
    return allowed(st, 0o5 if stat.S_ISDIR(st.st_mode) else 0o4)


def resolve_dag_user(setting: str, *, euid: int | None = None) -> DagUser | None:
    """The user DAG code runs as, or None for the platform's own. SandboxError for a setting that cannot work.

    `auto` (the default) is `nobody` when the platform runs as root, else None; `same` is always None;
    a name or a uid needs the platform to run as root, and may not be root.
    """
    euid = os.geteuid() if euid is None else euid
    setting = (setting or AUTO).strip()
    if setting == SAME:
        return None
    if euid != 0:
        if setting != AUTO:
            raise SandboxError(
                f"dag_user {setting!r} needs the platform to run as root (it runs as uid {euid}); "
                "set dag_user=same, or start it as root"
            )
        return None
    wanted = DEFAULT_DAG_USER if setting == AUTO else setting
    try:
        user = _lookup(wanted)
    except SandboxError:
        if setting == AUTO:
            log.warning("running as root and there is no user %r: DAG code runs as root (set dag_user)", wanted)
            return None
        raise
    if user.uid == 0:
        raise SandboxError(f"dag_user {setting!r} is root: DAG code would see every secret (use dag_user=same)")
    return user


def resolve_task_user(setting: str, *, euid: int | None = None, python: str = sys.executable) -> DagUser | None:
    """The user a local try runs as: `resolve_dag_user`, except that `auto` keeps the platform's user (with a
    warning) when the DAG user could not run the interpreter: a task starting `python` would fail. A named
    user is taken as it is."""
    user = resolve_dag_user(setting, euid=euid)
    if user is None or (setting or AUTO).strip() != AUTO:
        return user
    interpreter = Path(python).resolve()
    if not reachable(interpreter, user.uid, user.gid):
        log.warning(
            "dag_user auto: %s cannot run %s, so local tries run as this executor's user (set dag_user to a "
            "user that can, or install Spinner where every user may run it)", user.name, interpreter
        )  # fmt: skip
        return None
    return user


def drop_privileges(user: DagUser) -> None:
    """In a child about to run DAG code: become `user`, with no supplementary groups. Irreversible."""
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)


class PathViews:
    """Folders opened before the privileges are dropped, reached afterwards through /proc/self/fd/N.

    A path through /proc/self/fd/N checks no folder above the opened one: a DAG user reaches its DAG
    folder and the interpreter's libraries under a folder only root may enter (/root/.spinner,
    /root/.pyenv), and nothing else there. Going up from a view (`..`) stops at the first folder it
    may not enter, which is why Spinner's home is kept 0700."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.fds: dict[Path, int] = {}
        for folder in folders:
            if folder not in self.fds:
                self.fds[folder] = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)

    def view(self, folder: Path) -> Path:
        return Path(f"/proc/self/fd/{self.fds[folder]}") if folder in self.fds else folder

    def inside(self, path: Path) -> Path:
        """`path` as reached through the view of the opened folder it is in (itself if none)."""
        for folder in sorted(self.fds, key=lambda f: len(f.parts), reverse=True):
            if path.is_relative_to(folder):
                return self.view(folder) / path.relative_to(folder)
        return path

    def unview(self, text: str) -> str:
        """The real folders again where a view shows in `text` (file names, tracebacks)."""
        for folder in self.fds:
            view = str(self.view(folder))
            text = text.replace(view + "/", str(folder) + "/").replace(view + '"', str(folder) + '"')
        return text


def become(user: DagUser, dag_root: Path) -> tuple[PathViews, Path]:
    """In a child about to import DAG code as `user`: opens the DAG folder and every import folder `user`
    cannot reach, points sys.path at their views, drops the privileges. Returns the views and the DAG
    folder's view."""
    unreachable = [Path(p) for p in sys.path if p and Path(p).is_dir() and not reachable(Path(p), user.uid, user.gid)]
    views = PathViews([dag_root, *unreachable])
    sys.path[:] = [str(views.view(Path(p))) if p and Path(p) in views.fds else p for p in sys.path]
    _view_package_paths(views)
    sys.path_importer_cache.clear()
    drop_privileges(user)
    return views, views.view(dag_root)


def _view_package_paths(views: PathViews) -> None:
    """Packages imported already (importlib, email...) find their submodules through their `__path__`,
    not sys.path: theirs point at the views too, or `import importlib.metadata` fails as the DAG user."""
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if not isinstance(paths, list):  # a namespace package's path recomputes itself from sys.path
            continue
        viewed = [str(views.inside(Path(p))) if isinstance(p, str) and p.startswith("/") else p for p in paths]
        if viewed != paths:
            paths[:] = viewed


def private_home(home: Path) -> None:
    """Makes Spinner's home (its database, keys, tokens and logs) a folder only its owner may enter:
    DAG code of another user, which reaches its DAG folder inside it, can go no further up."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = home.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        log.info("making %s private (0700): it holds the database, the keys and the task logs", home)
        home.chmod(0o700)


def hide_process() -> bool:
    """Marks this process non-dumpable: processes of the same user cannot read its /proc environment, its
    memory, or attach to it (root still can). Returns whether it took (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
