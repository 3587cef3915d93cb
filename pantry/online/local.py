"""A redis-server for development, started under PANTRY_HOME and reused.

Why: ``make demo`` and a first ``pantry online push`` must work with no Redis set up. The
server's pidfile and port live in ``$PANTRY_HOME/redis``; the next call finds it alive and
reuses it. Tests never use this: they start their own server on a free port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from pantry.errors import PantryError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(port: int) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def ensure_local_redis(home: Path) -> str:
    folder = Path(home) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port_file = folder / "port"
    if port_file.exists():
        port = int(port_file.read_text().strip() or 0)
        if port and _alive(port):
            return f"redis://127.0.0.1:{port}/0"
    binary = shutil.which("redis-server")
    if binary is None:
        raise PantryError(
            "redis-server is not installed and PANTRY_REDIS_URL is not set",
            hint="run 'make setup' (installs Debian's redis-server) or set PANTRY_REDIS_URL",
        )
    port = _free_port()
    subprocess.run(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--pidfile",
            str(folder / "redis.pid"),
            "--dir",
            str(folder),
            "--logfile",
            str(folder / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
    )
    for _ in range(100):
        if _alive(port):
            port_file.write_text(str(port))
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise PantryError(f"the local redis-server on port {port} did not start", hint=f"see {folder / 'redis.log'}")
