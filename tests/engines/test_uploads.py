"""Staged frames a killed client left behind are swept; a live one's and a recent one's stay.

Oracle: the folders made by hand, each with the owner it claims (a process that has exited,
this one, another host) and the age it has."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pantry.engines.uploads import FOLDER, MAX_AGE_S, OWNER, new_folder, sweep


def _owned(location: Path, name: str, host: str, pid: int, age_s: float = 0) -> Path:
    folder = location / FOLDER / name
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1")
    (folder / OWNER).write_text(f"{host} {pid}\n")
    stamp = time.time() - age_s
    os.utime(folder, (stamp, stamp))
    return folder


def test_a_dead_writers_folder_goes_and_the_living_and_recent_stay(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # exited and reaped: no process has this id now (or, rarely, a new one: kept)
    here = socket.gethostname()
    _owned(tmp_path, "entities-dead", here, dead_pid)
    _owned(tmp_path, "entities-mine", here, os.getpid())
    _owned(tmp_path, "entities-elsewhere-new", "another-host", 1, age_s=60)
    _owned(tmp_path, "entities-elsewhere-old", "another-host", 1, age_s=MAX_AGE_S + 60)
    _owned(tmp_path, "entities-pid-taken-old", here, os.getpid(), age_s=MAX_AGE_S + 60)  # its pid reused since
    ownerless = tmp_path / FOLDER / "entities-ownerless-old"
    ownerless.mkdir()
    old = time.time() - MAX_AGE_S - 60
    os.utime(ownerless, (old, old))

    removed = sweep(tmp_path)

    assert sorted(removed) == [
        "entities-dead",
        "entities-elsewhere-old",
        "entities-ownerless-old",
        "entities-pid-taken-old",
    ]
    assert sorted(p.name for p in (tmp_path / FOLDER).iterdir()) == ["entities-elsewhere-new", "entities-mine"]


def test_a_new_folder_names_its_writer_and_survives_a_sweep(tmp_path: Path) -> None:
    folder = new_folder(tmp_path, "entities")
    assert (folder / OWNER).read_text().split() == [socket.gethostname(), str(os.getpid())]
    assert sweep(tmp_path) == [] and folder.is_dir()
    assert sweep(tmp_path / "nothing-here") == []
