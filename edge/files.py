"""Durable file writes shared by the model pack, the licence files and the vendor tool, and the
owner-only files and directories everything under EDGE_HOME is made of."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write-then-rename with fsync: a power cut leaves the old file or the new one, never half."""
    private_dir(path.parent, tighten=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            f.write(data)          # the whole buffer: os.write alone may stop short on big files
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)    # a full disk must not leave a half file behind
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# Everything under EDGE_HOME is personal data or protects it (templates, events naming people,
# keys): owner-only, whatever the umask the installer or service manager left us with.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path, tighten: bool = True) -> Path:
    """Create ``path`` (and missing parents) owner-only. ``tighten``: also narrow an existing
    ``path`` (a directory edge owns, made wider by an older version or a loose umask). Existing
    parents are never touched: EDGE_HOME may sit in a directory the user shares."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR)
        except FileExistsError:
            pass
    if tighten and path.stat().st_mode & 0o777 != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists owner-only before a library (SQLite, a log) opens it: SQLite
    creates its -wal and -shm files with the database file's mode."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_mode & 0o777 != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path
