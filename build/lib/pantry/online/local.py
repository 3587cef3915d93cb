"""A redis-server for development, started under PANTRY_HOME and reused.

Why: ``make demo`` and a first ``pantry online push`` must work with no Redis set up. The
server's pidfile and port live in ``$PANTRY_HOME/redis``; the next call finds it alive and
reuses it. Tests never use this: they start their own server on a free port.

Why a watcher: a daemonized redis-server outlives everything, including its folder, so
deleting ``.pantry`` (or a test's temporary home) used to leave orphans behind. A tiny
``sh`` loop started beside it stops it once its folder is gone; ``stop_local_redis``
(``pantry online stop``, ``make clean``) stops it on request.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pantry.errors import PantryError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(port: int) -> bool:
    try:
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )  # one try: a closed port is an answer, not a reason to back off and retry for seconds
        return bool(client.ping())
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
            _watch(folder)
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise PantryError(f"the local redis-server on port {port} did not start", hint=f"see {folder / 'redis.log'}")


# stop the server once its folder is gone (or exit when the server has stopped by itself)
_WATCHER = 'while [ -d "$1" ] && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill "$2" 2>/dev/null'


def _pid(folder: Path) -> int | None:
    try:
        return int((folder / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _watch(folder: Path) -> None:
    pid = _pid(folder)
    if pid is not None:
        subprocess.Popen(
            ["sh", "-c", _WATCHER, "pantry-redis-watch", str(folder), str(pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_local_redis(home: Path) -> int | None:
    """Stop the dev redis-server under ``home``; returns its port, or None when none was running."""
    folder = Path(home) / "redis"
    port_file = folder / "port"
    port = int(port_file.read_text().strip() or 0) if port_file.exists() else 0
    if not port or not _alive(port):
        port_file.unlink(missing_ok=True)
        return None
    pid = _pid(folder)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)  # redis-server shuts down on SIGTERM (it keeps nothing on disk here)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not _alive(port):
            break
        time.sleep(0.05)
    port_file.unlink(missing_ok=True)
    return port
