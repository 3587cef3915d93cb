"""Without PANTRY_REDIS_URL, Pantry starts a redis-server under PANTRY_HOME and reuses it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from pantry import Store


def test_local_server_is_started_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANTRY_REDIS_URL", raising=False)
    home = tmp_path / "home"
    first = Store(defs=tmp_path, home=home).online_url
    folder = home / "redis"
    pid = int((folder / "redis.pid").read_text())
    try:
        assert first == f"redis://127.0.0.1:{(folder / 'port').read_text()}/0"
        assert redis.Redis.from_url(first).ping()
        second = Store(defs=tmp_path, home=home).online_url
        assert second == first
        assert int((folder / "redis.pid").read_text()) == pid, "the running server is reused"
    finally:
        os.kill(pid, signal.SIGTERM)
