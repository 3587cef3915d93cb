"""The dev redis-server under PANTRY_HOME/redis: reused, stopped on request, gone with its folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis

from pantry.online.local import ensure_local_redis, stop_local_redis

REPO = Path(__file__).resolve().parents[2]


def alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def gone_within(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(url):
            return True
        time.sleep(0.1)
    return False


def test_it_stops_when_its_folder_is_deleted(tmp_path: Path) -> None:
    url = ensure_local_redis(tmp_path / "home")
    assert alive(url)
    assert ensure_local_redis(tmp_path / "home") == url  # reused, not a second server
    shutil.rmtree(tmp_path / "home")
    assert gone_within(url, 10), "the server outlived its folder"


def test_pantry_online_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = ensure_local_redis(home)
    env = {**os.environ, "PANTRY_HOME": str(home), "PANTRY_DEFS": str(REPO / "metrics_defs")}
    done = subprocess.run(
        [sys.executable, "-m", "pantry.api.cli", "online", "stop"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    port = url.split(":")[2].split("/")[0]
    assert f"stopped the local redis-server on port {port}" in done.stdout
    assert not alive(url)
    again = subprocess.run(
        [sys.executable, "-m", "pantry.api.cli", "online", "stop"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "no local redis-server is running" in again.stdout
    assert stop_local_redis(home) is None
