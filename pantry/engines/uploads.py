"""Frames staged for a cluster under ``<location>/_uploads/``, and the sweep of those whose
writer is gone.

Why: past ``STAGE_ROWS`` an entity frame reaches Spark's executors as Parquet staged in the
offline store's location, removed after the read. A client killed in between (SIGKILL, an
out-of-memory kill, a lost machine) left its folder behind, and a shared location filled
with them. Each folder says who wrote it (``_owner``: host and process id, a name Spark's
reader skips), so the next staging removes the folders of this host's dead processes at
once, and another host's after ``MAX_AGE_S``, longer than any read runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from pantry.processes import alive

FOLDER = "_uploads"
OWNER = "_owner"  # a leading underscore: Spark's Parquet reader skips it
MAX_AGE_S = 24 * 3600


def new_folder(location: Path, name: str) -> Path:
    """A new folder for ``name``'s rows, marked with its writer."""
    folder = location / FOLDER / f"{name}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    (folder / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return folder


def _abandoned(folder: Path, now: float) -> bool:
    """A writer on this host that is gone: at once. Any folder past ``MAX_AGE_S``: another
    host's, one without an owner (its writer killed before it wrote one), or one whose pid a
    new process took."""
    try:
        host, pid = (folder / OWNER).read_text().split()
        if host == socket.gethostname() and not alive(int(pid)):
            return True
    except (OSError, ValueError):
        pass
    try:
        return now - folder.stat().st_mtime > MAX_AGE_S
    except OSError:
        return False  # removed meanwhile


def sweep(location: Path, now: float | None = None) -> list[str]:
    """Remove the staged folders whose writer is gone; the names removed."""
    root = location / FOLDER
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and _abandoned(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
