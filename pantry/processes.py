"""Whether a process is still there, for cleaning up after one that was killed.

Why one place: a query worker leaves with the server that started it (``api/query_worker``),
and a staged upload is swept once its writer is gone (``engines/uploads``). Both ask the
same question, and a pid alone can lie: a zombie has ended but still answers a signal, and
a new process can take a dead one's pid, which only its start time tells apart.
"""

from __future__ import annotations

import os


def started(pid: int) -> str | None:
    """When process ``pid`` started (Linux's /proc), or None where there is no /proc; None too
    for a process that is gone or a zombie, which has ended but not been waited for."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def alive(pid: int, started_at: str | None = None) -> bool:
    """Whether ``pid`` runs; with ``started_at`` (from ``started``), whether that same process does."""
    if started_at is not None:
        return started(pid) == started_at  # a new process under a reused pid is not the one asked about
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
